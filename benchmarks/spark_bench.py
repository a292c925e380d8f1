"""The Spark engine at scale: the driver's and the workers' memory, the assignment's rounds and
the time of each stage of a batch ranking; and MLlib ALS against implicit.

    PYTHONPATH=. .venv/bin/python benchmarks/spark_bench.py --model /tmp/spark-1m/model \
        --members 20000 --skip-als
    PYTHONPATH=. .venv/bin/python benchmarks/spark_bench.py --model /tmp/bench-1m/model \
        --data /tmp/syn1m --skip-ranking --als-members 200000

Ranking: a seeded sample of ``--members`` members of the saved model (default: all of them) is
ranked on Spark ``--master`` (default ``local[2]``) exactly as ``recsys rank --engine spark``
does it: the driver reads the manifest only; the first Python worker copies the model to the
node's cache (verifying every checksum), every worker memory-maps that copy; blocks of
``--batch`` members are ranked by the executors, the capacity assignment runs as Spark rounds
(``--finish-below``: list entries left when the last rounds go to one task) and the executors
write the slates as Parquet to ``--output``. ``--check-local`` also ranks the same members with
the local engine in this process, after the Spark run, and compares the slates.

Memory is sampled every half second from ``/proc``: the driver's Python process (VmHWM), the
JVM (in ``local[N]`` it is the driver and the executor in one process) and every Python worker,
whose ``/proc/PID/smaps_rollup`` splits resident memory into pages shared with other processes
(the mapped model, the forked interpreter) and private ones; ``Pss`` charges each shared page
to the processes that map it in equal parts, so the workers' ``Pss`` adds up to what they take.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROLLUP_FIELDS = (
    "Rss",
    "Pss",
    "Pss_Anon",
    "Pss_File",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
)


def _neighbours(vectors: np.ndarray, queries: np.ndarray, n: int = 10) -> np.ndarray:
    """Exact top-n cosine neighbours (vectors are L2-normalised) of ``queries``, self excluded."""
    sims = vectors[queries] @ vectors.T
    sims[np.arange(len(queries)), queries] = -np.inf
    top = np.argpartition(-sims, n, axis=1)[:, :n]
    return top


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _rollup(pid: int) -> dict[str, int] | None:
    """``/proc/PID/smaps_rollup`` in MiB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        if name in ROLLUP_FIELDS:
            out[name] = int(rest.split()[0]) >> 10
    return out


def _status(pid: int, field: str) -> int | None:
    """A ``/proc/PID/status`` field in MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) >> 10
    except OSError:
        return None
    return None


class MemorySampler(threading.Thread):
    """Peak memory of the JVM and of every Python worker under this process, every ``every``
    seconds: per worker, the sample of its highest ``Pss`` (with the shared and private
    split) and its highest ``Rss``."""

    def __init__(self, every: float = 0.5):
        super().__init__(daemon=True)
        self.every = every
        self.done = threading.Event()
        self.workers: dict[int, dict] = {}
        self.jvm: dict[int, int] = {}
        self.sum_pss_peak = 0

    def run(self) -> None:
        while not self.done.wait(self.every):
            total = 0
            for pid in _descendants(os.getpid()):
                line = _cmdline(pid)
                if "java" in line.split(" ", 1)[0]:
                    self.jvm[pid] = max(self.jvm.get(pid, 0), _status(pid, "VmRSS") or 0)
                elif "pyspark.daemon" in line or "pyspark.worker" in line:
                    now = _rollup(pid)
                    if not now:
                        continue
                    total += now["Pss"]
                    seen = self.workers.setdefault(pid, {"peak_rss": 0, "at_peak_pss": now})
                    seen["peak_rss"] = max(seen["peak_rss"], now["Rss"])
                    if now["Pss"] >= seen["at_peak_pss"]["Pss"]:
                        seen["at_peak_pss"] = now
            self.sum_pss_peak = max(self.sum_pss_peak, total)

    def report(self) -> dict:
        ranked = {  # the daemon that forks the workers stays small; workers load the model
            pid: seen
            for pid, seen in self.workers.items()
            if seen["at_peak_pss"].get("Pss_File", 0) > 50 or seen["at_peak_pss"]["Rss"] > 400
        }
        return {
            "jvm_peak_rss_mib": max(self.jvm.values(), default=None),
            "python_workers_seen": len(self.workers),
            "python_workers_with_the_model": len(ranked),
            "workers_mib_at_their_peak_pss": [seen["at_peak_pss"] for seen in ranked.values()],
            "workers_peak_rss_mib": [seen["peak_rss"] for seen in ranked.values()],
            "sum_of_workers_pss_peak_mib": self.sum_pss_peak,
        }


def _rank(args, rows: np.ndarray | None, n_members: int) -> dict:
    from training.spark import manifest_sha, slates_on_spark, spark_session, write_slates_on_spark

    cache = Path(args.cache)
    shutil.rmtree(cache, ignore_errors=True)  # the first worker copies and verifies anew
    os.environ["PLUSONE_MODEL_CACHE"] = str(cache)  # the workers inherit it (local master)
    sampler = MemorySampler()
    sampler.start()
    stages: dict[str, float] = {}
    t = time.perf_counter()
    conf = {
        "spark.ui.enabled": "false",
        "spark.driver.memory": args.driver_memory,
        "spark.sql.shuffle.partitions": str(args.partitions),
    }
    with spark_session(args.master, app_name="plusone-bench", conf=conf) as spark:
        spark.sparkContext.setLogLevel("ERROR")
        stages["session"] = time.perf_counter() - t
        t = time.perf_counter()
        found = slates_on_spark(
            spark,
            args.model,
            rows,
            k=args.k,
            batch_size=args.batch,
            finish_below=args.finish_below,
        )
        stages.update(found.seconds)
        t = time.perf_counter()
        model_dir = str(Path(args.model).resolve())
        written = write_slates_on_spark(
            found, model_dir, manifest_sha(model_dir), args.output, k=args.k
        )
        stages["write"] = time.perf_counter() - t
        stages["total_after_session"] = sum(v for k, v in stages.items() if k != "session")
    sampler.done.set()
    sampler.join()
    n = n_members if rows is None else len(rows)
    out = {
        "master": args.master,
        "members": int(n),
        "rows_written": int(written),
        "parquet_files": len(list(Path(args.output).glob("*.parquet"))),
        "seconds": {k: round(v, 1) for k, v in stages.items()},
        "members_per_second_ranking": round(n / max(stages["ranking"], 1e-9), 1),
        "assignment": found.assignment.to_dict() if found.assignment is not None else None,
        "driver_python_peak_rss_mib": _status(os.getpid(), "VmHWM"),
        **sampler.report(),
    }
    if args.check_local:
        import pandas as pd

        from recsys import load_model

        model = load_model(args.model)
        want_ids, want_scores = model.rank_batch(
            np.arange(n) if rows is None else rows, args.k, batch_size=args.batch
        )
        got = pd.read_parquet(args.output)
        row_of = {m: i for i, m in enumerate(model.network_.member_ids.astype(str))}
        ids = np.full_like(want_ids, -1)
        position = {int(r): i for i, r in enumerate(np.arange(n) if rows is None else rows)}
        for member, rank, other in zip(got["member_id"], got["rank"], got["other_id"]):
            ids[position[row_of[member]], rank - 1] = row_of[other]
        out["identical_to_local"] = bool(np.array_equal(ids, want_ids))
    return out


def _als(args, model) -> dict:
    import pandas as pd

    from recsys import fit_als_factors
    from training.spark import als_factors_on_spark, spark_session

    matrix = model.network_.member_interests[: args.als_members]
    p = model.get_params()
    settings = dict(
        factors=p["als_factors"],
        iterations=p["als_iterations"],
        regularization=p["als_regularization"],
        alpha=p["als_alpha"],
    )
    t = time.perf_counter()
    local = fit_als_factors(matrix, random_state=0, **settings)
    implicit_s = time.perf_counter() - t
    t = time.perf_counter()
    with spark_session(
        "local[2]",
        app_name="plusone-bench-als",
        conf={"spark.ui.enabled": "false", "spark.driver.memory": args.driver_memory},
    ) as spark:
        spark.sparkContext.setLogLevel("ERROR")
        t = time.perf_counter()
        mllib = als_factors_on_spark(spark, matrix, seed=0, **settings)
        mllib_s = time.perf_counter() - t
    rng = np.random.default_rng(args.seed)
    has = np.flatnonzero(np.diff(matrix.indptr) > 0)
    queries = np.sort(rng.choice(has, size=min(2000, len(has)), replace=False))
    a, b = _neighbours(local, queries), _neighbours(mllib, queries)
    overlap = np.mean([len(np.intersect1d(x, y)) / 10 for x, y in zip(a, b)])
    out = {
        "members": int(matrix.shape[0]),
        "interests": int(matrix.shape[1]),
        "nonzeros": int(matrix.nnz),
        **settings,
        "implicit_seconds": round(implicit_s, 1),
        "mllib_local2_seconds": round(mllib_s, 1),
        "top10_neighbour_overlap": round(float(overlap), 3),
    }
    if args.data:
        from recsys import read_table

        members = read_table(
            next(
                os.path.join(args.data, f)
                for f in os.listdir(args.data)
                if f.startswith("members.")
            )
        )
        if "planted_community" in members.columns:
            planted = pd.Series(
                members["planted_community"].to_numpy(), index=members["member_id"].astype(str)
            )
            labels = planted.reindex(
                model.network_.member_ids[: args.als_members].astype(str)
            ).to_numpy()
            for name, top in (("implicit", a), ("mllib", b)):
                out[f"{name}_neighbours_in_planted_community"] = round(
                    float(np.mean(labels[top] == labels[queries][:, None])), 3
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="/tmp/spark-1m/model")
    parser.add_argument(
        "--data", default=None, help="the model's data directory (for the planted communities)"
    )
    parser.add_argument(
        "--members", type=int, default=0, help="members ranked (a seeded sample; 0: all)"
    )
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument(
        "--batch", type=int, default=2000, help="members per block (one Spark task)"
    )
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    parser.add_argument(
        "--finish-below",
        type=int,
        default=None,
        help="list entries left when the last rounds go to one task (default: the engine's)",
    )
    parser.add_argument("--output", default="/tmp/spark-bench-out/slates.parquet")
    parser.add_argument("--cache", default="/tmp/spark-bench-out/model-cache")
    parser.add_argument("--check-local", action="store_true")
    parser.add_argument(
        "--als-members",
        type=int,
        default=1_000_000,
        help="rows of the member × interest matrix fitted",
    )
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ranking", action="store_true")
    parser.add_argument("--skip-als", action="store_true")
    args = parser.parse_args()

    from recsys import read_model_manifest

    n = int(read_model_manifest(args.model)["n_members"])  # the driver never loads the model
    rows = None
    if args.members and args.members < n:
        rows = np.sort(
            np.random.default_rng(args.seed).choice(n, size=args.members, replace=False)
        )
    result = {
        "model": args.model,
        "members_in_model": n,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if not args.skip_ranking:
        result["ranking"] = {"k": args.k, "batch": args.batch, **_rank(args, rows, n)}
    if not args.skip_als:
        from recsys import load_model

        result["als"] = _als(args, load_model(args.model))
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
