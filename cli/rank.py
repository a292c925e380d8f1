"""``recsys rank`` (one member, or many to a file, locally or on Spark) and ``recsys broker``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cli._common import CliError, format_metrics_table
from recsys import TooFewContactsError, check_slate_size, load_model, read_model_manifest
from serving import UnknownMemberError, introductions_to_make
from training.batch import write_batch_ranking
from training.spark import (
    SparkUnavailableError,
    member_rows_of,
    require_pyspark,
    spark_batch_job,
)

__all__ = ["add_broker_parser", "add_rank_parser", "broker_command", "rank_command"]


def add_rank_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rank", help="introductions for one member, or many to a file")
    p.add_argument("--model", required=True, help="saved-model directory")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--member", help="one member id")
    who.add_argument("--members", help="file with one member id per line, or 'all'")
    p.add_argument("--k", type=int, default=20, help="slate size (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON (single member)")
    p.add_argument(
        "--output",
        help="batch ranking: a CSV or Parquet file; with --engine spark a directory the "
        "executors write Parquet files into",
    )
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="batch ranking in this process (default) or distributed on Spark (pip install "
        "'plusone[spark]', Java 17+)",
    )
    p.add_argument(
        "--spark-master",
        default=None,
        metavar="URL",
        help="Spark master for --engine spark, e.g. spark://host:7077 (default: spark-submit's, "
        "else local[*])",
    )
    p.add_argument(
        "--metrics",
        action="store_true",
        help="with --engine spark: reach and equity metrics of the output, computed on Spark and "
        "logged to MLflow",
    )
    p.add_argument(
        "--data",
        help="with --metrics: input-layout directory whose member table holds the sensitive "
        "attributes (default: the model's data)",
    )


def _check_k(k: int) -> None:
    """``--k`` within the library's bounds, checked before the model is even loaded."""
    try:
        check_slate_size(k, name="--k")
    except ValueError as err:
        raise CliError(str(err)) from None


def rank_command(args: argparse.Namespace) -> int:
    _check_k(args.k)
    if args.engine == "spark" and args.member is not None:
        raise CliError(
            "--engine spark ranks many members (--members FILE or all); one member's slate "
            "is ranked locally"
        )
    if args.engine != "spark" and (args.spark_master or args.metrics):
        raise CliError(
            f"{'--spark-master' if args.spark_master else '--metrics'} goes with --engine spark"
        )
    if args.data and not args.metrics:
        raise CliError("--data goes with --metrics")
    if args.engine == "spark":
        try:
            require_pyspark()
        except SparkUnavailableError as err:
            raise CliError(str(err)) from None
        return _rank_on_spark(args)
    model = load_model(args.model)
    net = model.network_
    if args.member is not None:
        if args.output:
            raise CliError("--output goes with --members; for one member the slate is printed")
        row = int(net.rows_of([args.member])[0])
        if row < 0:
            raise CliError(
                f"unknown member {args.member!r}: not in the model's {net.n_members:,} members"
            )
        ids, scores = model.rank([row], k=args.k)
        keep = ids[0] >= 0
        others, sc = ids[0][keep], scores[0][keep]
        reasons = model.explain(row, others)
        intros = [
            {"member_id": str(net.member_ids[o]), "score": round(float(s), 6), "reasons": r}
            for o, s, r in zip(others, sc, reasons)
        ]
        if args.json:
            print(json.dumps({"member_id": args.member, "introductions": intros}))
        else:
            print(f"Introductions for {args.member}:")
            for i, intro in enumerate(intros, 1):
                print(
                    f"{i:>3}. {intro['member_id']:<16} score {intro['score']:.3f}  "
                    f"{intro['reasons']['summary']}"
                )
            if not intros:
                print("  (none: the member has no candidates to propose)")
        return 0

    if not args.output:
        raise CliError("--members needs --output FILE (.csv or .parquet)")
    out = Path(args.output)
    if not (out.name.endswith(".csv") or out.name.endswith(".parquet")):
        raise CliError(f"--output {out}: the extension must be .csv or .parquet")
    if args.members == "all":
        rows = np.arange(net.n_members, dtype=np.int64)
    else:
        lines = _member_lines(args.members)
        rows = _known_rows(args.members, lines, net.rows_of([m for _, m in lines]))
    n = write_batch_ranking(model, rows, k=args.k, output=out)
    print(f"wrote {n:,} introductions for {len(rows):,} members to {out}")
    return 0


def _member_lines(path: str) -> list[tuple[int, str]]:
    """``(line number, member id)`` of each non-blank line of a --members file (ids stripped of
    surrounding spaces, as in the input tables)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CliError(f"cannot read --members {path}: {err.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CliError(
            f"{path}, line {line}: not UTF-8 text (byte {data[err.start]:#04x}); --members is a "
            "text file of member ids, one a line"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise CliError(f"{path}, line {line}: a NUL byte; --members is a text file of ids")
    return [(i, line.strip()) for i, line in enumerate(text.split("\n"), 1) if line.strip()]


def _known_rows(path: str, lines: list[tuple[int, str]], rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64)
    if (rows < 0).any():
        i = int(np.flatnonzero(rows < 0)[0])
        raise CliError(f"{path}, line {lines[i][0]}: unknown member {lines[i][1]!r}")
    return rows


def _rank_on_spark(args: argparse.Namespace) -> int:
    """Batch ranking on Spark: the driver reads the manifest (and, for --members FILE, the
    member table) but never loads the model; the executors rank, assign and write."""
    if args.member is not None or args.members is None:  # (--member is refused above)
        raise CliError("--engine spark ranks many members (--members FILE or all)")
    if not args.output:
        raise CliError("--members needs --output DIR (with --engine spark, a directory)")
    out = Path(args.output)
    if out.name.endswith(".csv"):
        raise CliError(
            f"--output {out}: with --engine spark the executors write a directory of Parquet "
            "files (e.g. --output slates/ or slates.parquet); CSV is for --engine local"
        )
    try:
        read_model_manifest(args.model)
        if args.members == "all":
            rows = None
        else:
            lines = _member_lines(args.members)
            rows = _known_rows(
                args.members, lines, member_rows_of(args.model, [m for _, m in lines])
            )
        result = spark_batch_job(
            args.model,
            rows,
            k=args.k,
            output=out,
            master=args.spark_master,
            metrics=args.metrics,
            data_dir=args.data,
        )
    except SparkUnavailableError as err:
        raise CliError(str(err)) from None
    rate = result.members / max(result.seconds, 1e-9)
    print(
        f"wrote {result.rows_written:,} introductions for {result.members:,} members to {out} "
        f"(ranked on Spark in {result.seconds:.1f} s, {rate:,.0f} members/s)"
    )
    if result.metrics is not None:
        print(format_metrics_table(result.metrics, title=f"batch output {out}"))
        if result.run_id:
            print(f"mlflow:  run {result.run_id}")
    return 0


def add_broker_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "broker", help="introductions a member could make between their own contacts, with reasons"
    )
    p.add_argument("--model", required=True, help="saved-model directory")
    p.add_argument("--member", required=True, help="the broker's member id")
    p.add_argument("--k", type=int, default=10, help="introductions to list (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")


def broker_command(args: argparse.Namespace) -> int:
    _check_k(args.k)
    model = load_model(args.model)
    try:
        slate = introductions_to_make(model, args.member, args.k)
    except (UnknownMemberError, TooFewContactsError) as err:
        raise CliError(str(err)) from None
    intros = [i.to_dict() for i in slate.introductions_to_make]
    if args.json:
        print(json.dumps({"member_id": args.member, "introductions_to_make": intros}))
        return 0
    print(f"Introductions {args.member} could make:")
    for i, intro in enumerate(intros, 1):
        pair = f"{intro['member_a']} + {intro['member_b']}"
        print(f"{i:>3}. {pair:<28} score {intro['score']:.3f}  {intro['reasons']['summary']}")
    if not intros:
        print("  (none: every two of their contacts already know each other, or are at capacity)")
    return 0
