"""Ranking speed of a saved model: one member at a time, and batches.

    .venv/bin/python benchmarks/rank_bench.py --model /tmp/bench-1m/model [--members 300] [--batch
    4000] [--repeats 5]

Prints JSON: single-member latency of the whole path (pool, scoring, re-ranking, k = 20) as
median and p99 over distinct members, also as the service ranks a fresh slate (with inbound
counts as the exposure, so the model's least-exposed places are filled); batch throughput of `rank`
(no capacity) and `rank_batch`
(global capacity), median over ``--repeats`` batches of distinct members; and two in-process
baselines, since absolute times drift on a shared machine: plain Adamic-Adar candidates for the
same members, and `rank` with the pools scored through the feature matrix in numpy (the path
before the compiled one-pass scorer; the model is wrapped as a one-member mixture, which takes it).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--members", type=int, default=300, help="members timed one at a time")
    parser.add_argument("--batch", type=int, default=4000, help="members ranked in the batch runs")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=5, help="batches timed (distinct members each)"
    )
    args = parser.parse_args()

    from recsys import (
        AdamicAdarCandidates,
        ConstrainedAcceptanceModel,
        IntroductionRecommender,
        load_model,
    )

    t = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - t
    n = model.network_.n_members
    rng = np.random.default_rng(args.seed)
    singles = rng.choice(n, size=min(args.members, n), replace=False)
    baseline = AdamicAdarCandidates().fit(model.network_)

    model.rank(singles[:5], k=args.k)  # warm caches
    model.rank_batch(
        singles[: min(len(singles), 200)], k=args.k
    )  # and compile the batch (parallel) kernels
    # as the service ranks a fresh slate: with its decayed inbound counts as the exposure
    counts = rng.poisson(2.0, n).astype(np.float64)
    model.rank(singles[:5], k=args.k, exposure=counts)
    single, served, base = [], [], []
    for i, row in enumerate(singles):
        # every other member is ranked with the counts first: the second call finds the member's
        # rows of the graph in cache, and neither figure should get that for free
        for how in (None, counts) if i % 2 else (counts, None):
            t = time.perf_counter()
            model.rank([row], k=args.k, exposure=how)
            (single if how is None else served).append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline.candidates([row], args.k)
        base.append(time.perf_counter() - t)
    # the same model scoring through the (pairs x features) matrix: a one-member mixture is not
    # the plain AcceptanceModel, so the pools go through PairFeatures.transform and the model
    mixture = ConstrainedAcceptanceModel()
    mixture.members_, mixture.weights_ = [model.acceptance_], np.ones(1)
    matrix_path = IntroductionRecommender.from_state(
        model.state_.replace(acceptance=mixture), **model.get_params()
    )
    timed = {"rank": [], "rank_batch": [], "rank_numpy_scoring": [], "baseline_aa": []}
    for _ in range(args.repeats):
        batch_rows = rng.choice(n, size=min(args.batch, n), replace=False)
        for name, run in (
            ("rank", lambda rows=batch_rows: model.rank(rows, k=args.k)),
            ("rank_batch", lambda rows=batch_rows: model.rank_batch(rows, k=args.k)),
            (
                "rank_numpy_scoring",
                lambda rows=batch_rows: matrix_path.rank(rows, k=args.k),
            ),
            ("baseline_aa", lambda rows=batch_rows: baseline.candidates(rows, args.k)),
        ):
            t = time.perf_counter()
            run()
            timed[name].append(len(batch_rows) / (time.perf_counter() - t))
    rate = {name: round(float(np.median(runs))) for name, runs in timed.items()}
    ms = lambda xs, q: round(float(np.percentile(xs, q)) * 1e3, 2)  # noqa: E731
    print(
        json.dumps(
            {
                "members_in_model": n,
                "load_seconds": round(load_s, 1),
                "single_median_ms": ms(single, 50),
                "single_p99_ms": ms(single, 99),
                "single_with_exposure_median_ms": ms(served, 50),
                "single_with_exposure_p99_ms": ms(served, 99),
                "baseline_aa_single_median_ms": ms(base, 50),
                "single_ratio_to_baseline": round(float(np.median(single) / np.median(base)), 1),
                "batch_members": len(batch_rows),
                "rank_members_per_second": rate["rank"],
                "rank_batch_with_capacity_members_per_second": rate["rank_batch"],
                "rank_numpy_scoring_members_per_second": rate["rank_numpy_scoring"],
                "rank_ratio_to_numpy_scoring": round(rate["rank"] / rate["rank_numpy_scoring"], 2),
                "baseline_aa_members_per_second": rate["baseline_aa"],
                "runs_members_per_second": {
                    name: [round(x) for x in runs] for name, runs in timed.items()
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
