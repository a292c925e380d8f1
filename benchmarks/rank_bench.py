"""Ranking speed of a saved model: one member at a time, and batches.

    .venv/bin/python benchmarks/rank_bench.py --model /tmp/bench-1m/model [--members 300] [--batch 4000]

Prints JSON: single-member latency of the whole path (pool, scoring, re-ranking, k = 20) as
median and p99 over distinct members; batch throughput of `rank` (no capacity) and `rank_batch`
(global capacity); and, as the in-process baseline, plain Adamic-Adar candidates for the same
members (ratios quote against it, since absolute times drift on a shared machine).
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
    args = parser.parse_args()

    from recsys import AdamicAdarCandidates, load_model

    t = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - t
    n = model.network_.n_members
    rng = np.random.default_rng(args.seed)
    singles = rng.choice(n, size=min(args.members, n), replace=False)
    baseline = AdamicAdarCandidates().fit(model.network_)

    model.rank(singles[:5], k=args.k)  # warm caches
    single, base = [], []
    for row in singles:
        t = time.perf_counter()
        model.rank([row], k=args.k)
        single.append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline.candidates([row], args.k)
        base.append(time.perf_counter() - t)
    batch_rows = rng.choice(n, size=min(args.batch, n), replace=False)
    t = time.perf_counter()
    model.rank(batch_rows, k=args.k)
    rank_s = time.perf_counter() - t
    t = time.perf_counter()
    model.rank_batch(batch_rows, k=args.k)
    batch_s = time.perf_counter() - t
    t = time.perf_counter()
    baseline.candidates(batch_rows, args.k)
    base_batch_s = time.perf_counter() - t
    ms = lambda xs, q: round(float(np.percentile(xs, q)) * 1e3, 2)  # noqa: E731
    print(json.dumps({
        "members_in_model": n,
        "load_seconds": round(load_s, 1),
        "single_median_ms": ms(single, 50),
        "single_p99_ms": ms(single, 99),
        "baseline_aa_single_median_ms": ms(base, 50),
        "single_ratio_to_baseline": round(float(np.median(single) / np.median(base)), 1),
        "rank_members_per_second": round(len(batch_rows) / rank_s),
        "rank_batch_with_capacity_members_per_second": round(len(batch_rows) / batch_s),
        "baseline_aa_members_per_second": round(len(batch_rows) / base_batch_s),
    }, indent=1))


if __name__ == "__main__":
    main()
