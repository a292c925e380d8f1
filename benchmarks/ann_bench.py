"""Recall of the faiss member indexes (IVF, HNSW) against exact search, on a saved model's ALS
factors.

    .venv/bin/python benchmarks/ann_bench.py --model /tmp/bench-1m/model [--queries 2000] [--n 100]
    \
        [--probe-shares 0.01,0.02,0.04]

Prints JSON per index: recall@n of its neighbours against exact inner-product search for random
members with interests, build time, and the time per query of both.
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
    parser.add_argument("--indexes", default="ivf,hnsw")
    parser.add_argument(
        "--probe-shares",
        default=None,
        help="also time the IVF index at these shares of cells probed",
    )
    args = parser.parse_args()

    from recsys import ALSCandidates, load_model

    # the factors and the graph of the saved model (checksums verified, no pickles)
    model = load_model(args.model)
    factors, net = model.member_factors_, model.network_
    rng = np.random.default_rng(0)
    has = np.flatnonzero(np.linalg.norm(factors, axis=1) > 0)
    rows = rng.choice(has, size=min(args.queries, len(has)), replace=False)
    exact = ALSCandidates(index="exact").set_factors(net, factors)
    t = time.perf_counter()
    e_ids, _ = exact.candidates(rows, args.n)
    exact_s = time.perf_counter() - t
    out = {
        "members": net.n_members,
        "queries": len(rows),
        "n": args.n,
        "exact_ms_per_query": round(exact_s / len(rows) * 1e3, 2),
    }
    for kind in args.indexes.split(","):
        t = time.perf_counter()
        ann = ALSCandidates(index=kind, hnsw_ef_search=args.ef_search).set_factors(net, factors)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        a_ids, _ = ann.candidates(rows, args.n)
        ann_s = time.perf_counter() - t
        hits = sum(len(np.intersect1d(e[e >= 0], a[a >= 0])) for e, a in zip(e_ids, a_ids))
        out[kind] = {
            "recall_vs_exact": round(hits / max(int((e_ids >= 0).sum()), 1), 4),
            "build_seconds": round(build_s, 1),
            "ms_per_query": round(ann_s / len(rows) * 1e3, 3),
        }
        if kind == "ivf" and args.probe_shares:
            for share in (float(x) for x in args.probe_shares.split(",")):
                ann.index_.nprobe = max(
                    8, int(np.ceil(share * ann.index_.nlist))
                )  # as ALSCandidates sets it
                t = time.perf_counter()
                a_ids, _ = ann.candidates(rows, args.n)
                ann_s = time.perf_counter() - t
                hits = sum(len(np.intersect1d(e[e >= 0], a[a >= 0])) for e, a in zip(e_ids, a_ids))
                out[f"ivf_probe_{share}"] = {
                    "cells_probed": int(ann.index_.nprobe),
                    "cells": int(ann.index_.nlist),
                    "recall_vs_exact": round(hits / max(int((e_ids >= 0).sum()), 1), 4),
                    "ms_per_query": round(ann_s / len(rows) * 1e3, 3),
                }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
