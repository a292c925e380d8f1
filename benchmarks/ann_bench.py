"""Recall of the faiss HNSW member index against exact search, on a saved model's ALS factors.

    .venv/bin/python benchmarks/ann_bench.py --model /tmp/bench-1m/model [--queries 2000] [--n 100]

Prints JSON: recall@n of HNSW neighbours against exact inner-product search for random members
with interests, and the time per query of both.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--ef-search", type=int, default=128)
    args = parser.parse_args()

    from recsys import ALSCandidates, load_model

    model = load_model(args.model)
    net, factors = model.network_, model.member_factors_
    rng = np.random.default_rng(0)
    has = np.flatnonzero(np.linalg.norm(factors, axis=1) > 0)
    rows = rng.choice(has, size=min(args.queries, len(has)), replace=False)
    exact = ALSCandidates(index="exact").set_factors(net, factors)
    t = time.perf_counter()
    hnsw = ALSCandidates(index="hnsw", hnsw_ef_search=args.ef_search).set_factors(net, factors)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    e_ids, _ = exact.candidates(rows, args.n)
    exact_s = time.perf_counter() - t
    t = time.perf_counter()
    a_ids, _ = hnsw.candidates(rows, args.n)
    ann_s = time.perf_counter() - t
    hits = sum(len(np.intersect1d(e[e >= 0], a[a >= 0])) for e, a in zip(e_ids, a_ids))
    print(json.dumps({
        "members": net.n_members,
        "queries": len(rows),
        "n": args.n,
        "ef_search": args.ef_search,
        "recall_vs_exact": round(hits / max(int((e_ids >= 0).sum()), 1), 4),
        "hnsw_build_seconds": round(build_s, 1),
        "exact_ms_per_query": round(exact_s / len(rows) * 1e3, 2),
        "hnsw_ms_per_query": round(ann_s / len(rows) * 1e3, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
