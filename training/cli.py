"""The ``recsys`` command line (see DESIGN.md, "Command line")."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

logger = logging.getLogger("recsys.cli")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys", description="Plus One: introductions that widen people's networks."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "train", help="fit, evaluate on held-out connections, save the model and log an MLflow run"
    )
    p.add_argument("--config", help="YAML config (default: built-in defaults)")
    p.add_argument(
        "--data",
        help="input-layout directory (default: the config's, else the built-in synthetic network)",
    )
    p.add_argument("--output", default="artifacts", help="output directory (default: artifacts)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )

    p = sub.add_parser("evaluate", help="evaluate a saved model")
    p.add_argument("--model", required=True, help="saved-model directory")
    p.add_argument("--data", help="input-layout directory (default: the model's own data)")
    p.add_argument(
        "--json", action="store_true", help="print one flat JSON object of metric name → number"
    )

    p = sub.add_parser("rank", help="introductions for one member, or many to a file")
    p.add_argument("--model", required=True, help="saved-model directory")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--member", help="one member id")
    who.add_argument("--members", help="file with one member id per line, or 'all'")
    p.add_argument("--k", type=int, default=20, help="slate size (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON (single member)")
    p.add_argument("--output", help="CSV or Parquet file for batch ranking")
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

    p = sub.add_parser(
        "broker", help="introductions a member could make between their own contacts, with reasons"
    )
    p.add_argument("--model", required=True, help="saved-model directory")
    p.add_argument("--member", required=True, help="the broker's member id")
    p.add_argument("--k", type=int, default=10, help="introductions to list (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("serve", help="the HTTP service")
    p.add_argument(
        "--model",
        required=True,
        help="saved-model directory or MLflow model URI (models:/NAME@ALIAS)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=30.0,
        help="how often to look for a new model version (0: never)",
    )
    p.add_argument(
        "--precompute",
        metavar="N|all",
        help="after each load, rank the slates of the N best-connected members "
        "(or all) in the background, capacity held across them, and answer from that table "
        "(default: "
        "$PLUSONE_PRECOMPUTE, else 0)",
    )

    p = sub.add_parser(
        "sweep",
        help="train every point of a config grid as child runs of one MLflow run, with a "
        "trade-off plot",
    )
    p.add_argument(
        "--config",
        required=True,
        help="sweep YAML: base config, experiment and grid (see configs/sweep.yaml)",
    )
    p.add_argument(
        "--output",
        default="runs/sweep",
        help="directory for the points' outputs and the sweep results (default: runs/sweep)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the base config (repeatable)",
    )

    p = sub.add_parser(
        "compare",
        help="two MLflow runs side by side, with a bootstrap test of inequality of outcomes",
    )
    p.add_argument("run_a", metavar="RUN_A", help="MLflow run id of the baseline")
    p.add_argument("run_b", metavar="RUN_B", help="MLflow run id of the change")
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    p.add_argument("--output", help="write the report to this .md or .html file (with the plots)")
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")

    p = sub.add_parser(
        "simulate", help="feedback-loop simulation of the unconstrained and re-ranked policies"
    )
    p.add_argument(
        "--config", help="YAML config (default: built-in defaults; see configs/simulate.yaml)"
    )
    p.add_argument("--rounds", type=int, help="rounds to simulate (default: simulation.rounds)")
    p.add_argument(
        "--output",
        default="runs/simulation",
        help="directory for the history, groups and plot (default: runs/simulation)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )

    p = sub.add_parser("generate", help="write the synthetic network in the input layout")
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("csv", "csv.gz", "parquet"), default="csv.gz")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from recsys import DataValidationError, ModelFormatError
    from training.config import ConfigError

    handlers = {
        "train": _train,
        "evaluate": _evaluate,
        "rank": _rank,
        "generate": _generate,
        "serve": _serve,
        "broker": _broker,
        "sweep": _sweep,
        "compare": _compare,
        "simulate": _simulate,
    }
    try:
        return handlers[args.command](args)
    except (
        CliError,
        ConfigError,
        DataValidationError,
        ModelFormatError,
        FileNotFoundError,
    ) as err:
        print(f"recsys {args.command}: error: {err}", file=sys.stderr)
        return 2


def _train(args) -> int:
    from training.config import load_config
    from training.job import train_job

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.path={json.dumps(str(args.data))}")
    config = load_config(args.config, overrides=overrides)
    result = train_job(config, output_dir=args.output, on_stage=lambda s: logger.info("%s", s))
    print(format_metrics_table(result.metrics, title=f"Plus One — {result.output_dir}"))
    print(f"\nmodel:   {result.model_dir}")
    print(f"metrics: {result.output_dir / 'metrics.json'}")
    if result.run_id:
        print(
            f"mlflow:  run {result.run_id} in {config.mlflow.tracking_uri} (experiment "
            f"{config.mlflow.experiment})"
        )
    return 0


def format_metrics_table(metrics: dict[str, float], *, title: str = "") -> str:
    """A readable two-column table: relevance, reach and equity figures grouped."""
    order = (
        "recall",
        "ndcg",
        "baseline/",
        "coverage",
        "bridge",
        "plus_one",
        "exposure",
        "max_inbound",
        "equity/",
    )

    def rank(name: str) -> tuple[int, str]:
        for i, prefix in enumerate(order):
            if name.startswith(prefix):
                return i, name
        return len(order), name

    names = sorted(metrics, key=rank)
    width = max((len(n) for n in names), default=10)
    lines = [title, "-" * (width + 14)] if title else []
    for name in names:
        value = metrics[name]
        text = (
            "n/a"
            if value is None or value != value
            else (f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}")
        )
        lines.append(f"{name:<{width}}  {text:>12}")
    return "\n".join(lines)


def _evaluate(args) -> int:
    from training.job import evaluate_saved_model

    metrics = evaluate_saved_model(args.model, data_dir=args.data)
    if args.json:
        print(json.dumps({k: (v if v == v else None) for k, v in metrics.items()}, sort_keys=True))
    else:
        print(format_metrics_table(metrics, title=f"evaluation of {args.model}"))
    return 0


def _rank(args) -> int:
    import numpy as np

    from recsys import load_model

    if args.k < 1:
        raise CliError(f"--k must be a positive whole number, got {args.k}")
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
        from training.spark import SparkUnavailableError, require_pyspark

        try:
            require_pyspark()
        except SparkUnavailableError as err:
            raise CliError(str(err)) from None
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
        try:
            wanted = [
                line.strip()
                for line in Path(args.members).read_text().splitlines()
                if line.strip()
            ]
        except OSError as err:
            raise CliError(f"cannot read --members {args.members}: {err.strerror}") from None
        rows = net.rows_of(wanted).astype(np.int64)
        if (rows < 0).any():
            i = int(np.flatnonzero(rows < 0)[0])
            raise CliError(f"{args.members}, line {i + 1}: unknown member {wanted[i]!r}")
    if args.engine == "spark":
        return _rank_on_spark(args, model, rows, out)
    from training.batch import write_batch_ranking

    n = write_batch_ranking(model, rows, k=args.k, output=out)
    print(f"wrote {n:,} introductions for {len(rows):,} members to {out}")
    return 0


def _rank_on_spark(args, model, rows, out: Path) -> int:
    from training.spark import SparkUnavailableError, spark_batch_job

    try:
        result = spark_batch_job(
            model,
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


def _broker(args) -> int:
    from recsys import TooFewContactsError, load_model
    from serving._broker import introductions_to_make
    from serving._recommender import UnknownMemberError

    if args.k < 1:
        raise CliError(f"--k must be a positive whole number, got {args.k}")
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


def _serve(args) -> int:
    from serving.app import PRECOMPUTE_ENV, parse_precompute, serve

    if args.precompute is not None:
        try:
            parse_precompute(
                args.precompute, "--precompute"
            )  # a bad value stops here, not in a worker
        except ValueError as err:
            raise CliError(str(err)) from None
        os.environ[PRECOMPUTE_ENV] = args.precompute
    serve(args.model, host=args.host, port=args.port, poll_seconds=args.poll_seconds)
    return 0


def _sweep(args) -> int:
    from experiments.sweep import load_sweep, run_sweep, summary_table

    spec, base = load_sweep(args.config)
    result = run_sweep(spec, base, output_dir=args.output, overrides=list(args.overrides))
    k = int(
        next((c.split("_")[-1] for c in result.results.columns if c.startswith("recall_at_")), 20)
    )
    print(summary_table(result.results, k=k))
    print(f"\nresults: {result.table}\nplot:    {result.plot}")
    if result.parent_run_id:
        print(f"mlflow:  parent run {result.parent_run_id} (experiment {spec.experiment})")
    return 0


def _compare(args) -> int:
    from experiments.compare import compare_runs, render_markdown, write_report

    if args.output and not args.output.lower().endswith((".md", ".html", ".htm")):
        raise CliError(f"--output {args.output}: the report must end in .md or .html")
    if args.bootstrap < 10:
        raise CliError("--bootstrap must be at least 10")
    try:
        comparison = compare_runs(
            args.run_a,
            args.run_b,
            tracking_uri=args.tracking_uri,
            n_boot=args.bootstrap,
            random_state=args.seed,
        )
    except LookupError as err:
        raise CliError(str(err)) from None
    print(render_markdown(comparison))
    if args.output:
        print(f"report: {write_report(comparison, args.output)}")
    return 0


def _simulate(args) -> int:
    from experiments.simulate import run_simulation
    from training.config import load_config

    if args.rounds is not None and args.rounds < 1:
        raise CliError(f"--rounds must be a positive whole number, got {args.rounds}")
    config = load_config(args.config, overrides=list(args.overrides))
    result = run_simulation(config, output_dir=args.output, rounds=args.rounds)
    cols = [
        c
        for c in (
            "round",
            "degree_gini",
            "degree_atkinson",
            "modularity",
            "bridge_share",
            "accepted",
            "accepted_bridge_share",
        )
        if c in result.history
    ]
    for policy, frame in result.history.groupby("policy", sort=False):
        print(f"\n{policy}")
        print(frame[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(
        f"\n{result.seconds:.0f} s; history: {Path(args.output) / 'simulation_history.csv'}; "
        f"plot: {result.plot}"
    )
    if result.parent_run_id:
        print(
            f"mlflow:  parent run {result.parent_run_id} (experiment "
            f"{config.simulation.experiment})"
        )
    return 0


def _generate(args) -> int:
    from recsys import write_synthetic

    if args.members < 10:
        raise CliError("--members must be at least 10")
    paths = write_synthetic(args.output, args.members, seed=args.seed, fmt=args.format)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
