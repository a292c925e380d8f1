"""Spark engine against the local one: batch-ranking throughput, and MLlib ALS against implicit.

    .venv/bin/python benchmarks/spark_bench.py --model /tmp/bench-1m/model --members 40000
    --skip-als
    .venv/bin/python benchmarks/spark_bench.py --model /tmp/bench-1m/model --data /tmp/syn1m \
        --skip-ranking --als-members 200000

Defaults: all the model's members (``--members``, 1,000,000 for the model above) and all rows of
its member × interest matrix (``--als-members``); ``--k 20``, ``--batch 2000``.

Ranking: the same seeded sample of ``--members`` members of the saved model is ranked three ways
in one run: the local engine (``rank_batch`` in this process), then Spark ``local[1]`` and
``local[2]`` (``rank_on_spark``: blocks of ``--batch`` members per task, one global capacity
assignment on the driver). Each Spark session first ranks a few one-member blocks so that every
Python worker loads the model (``warm_up_seconds``: the one-off cost per worker); the timed call
is then the steady state, including the collection and the assignment on the driver. Every
engine's slates are checked equal to the local ones.

ALS: both engines fit the model's own member × interest matrix (its first ``--als-members``
rows) with the model's ALS settings; the agreement is the overlap of each member's 10 nearest
neighbours by cosine in the two embeddings (over 2,000 sampled members), and, for each engine,
the share of those neighbours in the member's planted community when the data names it.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def _neighbours(vectors: np.ndarray, queries: np.ndarray, n: int = 10) -> np.ndarray:
    """Exact top-n cosine neighbours (vectors are L2-normalised) of ``queries``, self excluded."""
    sims = vectors[queries] @ vectors.T
    sims[np.arange(len(queries)), queries] = -np.inf
    top = np.argpartition(-sims, n, axis=1)[:, :n]
    return top


def _rank(args, model, rows) -> dict:
    from training.spark import rank_on_spark, spark_session

    out = {}
    # rank_batch, in its two halves: per-member preference lists, then the global assignment
    t = time.perf_counter()
    lists = model.preference_lists(rows, args.k, batch_size=args.batch)
    lists_s = time.perf_counter() - t
    t = time.perf_counter()
    want_ids, want_scores = model.assign(rows, *lists, args.k)
    assign_s = time.perf_counter() - t
    local_s = lists_s + assign_s
    out["local"] = {
        "seconds": round(local_s, 1),
        "members_per_second": round(len(rows) / local_s, 1),
        "preference_lists_seconds": round(lists_s, 1),
        "assign_seconds": round(assign_s, 2),
    }
    for master in ("local[1]", "local[2]"):
        t = time.perf_counter()
        with spark_session(
            master,
            app_name="plusone-bench",
            conf={"spark.ui.enabled": "false", "spark.driver.memory": args.driver_memory},
        ) as spark:
            spark.sparkContext.setLogLevel("ERROR")
            start_s = time.perf_counter() - t
            # warm-up: one-member blocks, enough for every worker to load the model once
            t = time.perf_counter()
            rank_on_spark(
                spark,
                model,
                args.model,
                rows[: 4 * spark.sparkContext.defaultParallelism],
                k=args.k,
                batch_size=1,
            )
            warm_s = time.perf_counter() - t
            t = time.perf_counter()
            ids, scores = rank_on_spark(
                spark, model, args.model, rows, k=args.k, batch_size=args.batch
            )
            spark_s = time.perf_counter() - t
        out[master] = {
            "session_start_seconds": round(start_s, 1),
            "warm_up_seconds": round(warm_s, 1),
            "seconds": round(spark_s, 1),
            "members_per_second": round(len(rows) / spark_s, 1),
            "ratio_to_local": round(local_s / spark_s, 2),
            "identical_slates": bool(
                np.array_equal(ids, want_ids) and np.allclose(scores, want_scores, rtol=1e-6)
            ),
        }
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
    parser.add_argument("--model", default="/tmp/bench-1m/model")
    parser.add_argument(
        "--data", default=None, help="the model's data directory (for the planted communities)"
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1_000_000,
        help="members ranked (a seeded sample of the model's)",
    )
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument(
        "--batch", type=int, default=2000, help="members per block (one Spark task)"
    )
    parser.add_argument(
        "--als-members",
        type=int,
        default=1_000_000,
        help="rows of the member × interest matrix fitted",
    )
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ranking", action="store_true")
    parser.add_argument("--skip-als", action="store_true")
    args = parser.parse_args()

    from recsys import load_model

    t = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - t
    n = model.network_.n_members
    rows = np.sort(
        np.random.default_rng(args.seed).choice(n, size=min(args.members, n), replace=False)
    )
    result = {
        "model": args.model,
        "members_in_model": n,
        "model_load_seconds": round(load_s, 1),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if not args.skip_ranking:
        result["ranking"] = {
            "members": int(len(rows)),
            "k": args.k,
            "batch": args.batch,
            **_rank(args, model, rows),
        }
    if not args.skip_als:
        result["als"] = _als(args, model)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
