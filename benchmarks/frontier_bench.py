"""How much recall any re-ranking of a model's pools can keep at a given exposure Gini (issue 4).

    .venv/bin/python benchmarks/frontier_bench.py --model /tmp/rr-syn-depth/model [--members 6000]
        [--gini-ratio 0.70] [--iterations 100] [--json FILE]

The re-ranker's targets (recall ≥ 0.95 ×, exposure Gini ≤ 0.70 × of ranking by score alone)
may contradict each other on a network. This script estimates the best recall any policy over
the same pools can keep at the Gini bound, to tell a weak re-ranker from an infeasible target.

On the sample ``rerank_bench.py`` draws (same seed), it maximises

    Σ_r Σ_j p_rj x_rj − λ · Gini(exposure(x)),   x_r ∈ conv{slates of k from pool r}

by Frank-Wolfe (Jaggi, ICML 2013): each step ranks every pool by ``p − λ ∇Gini`` (the
gradient of the population Gini in a member's exposure is ``(2 rank − n − 1) / (n Σ e)`` up to
a constant, so the price is their rank in exposure) and moves ``2 / (t + 2)`` of the way to
those slates. The iterate is a mix of slates (a randomised policy), which can only do better
than any deterministic one; λ is bisected until the mix's Gini meets the bound, and its recall
on the held-out connections is reported against unconstrained.

Relevance ``p`` is, in turn:

1. ``model``: the model's reciprocal acceptance score (what any re-ranker of the pools sees);
2. ``oracle cells``: the held-out hit rate of the sample itself, in cells of score (20
   quantiles) × candidate degree (10 quantiles) — an optimistic relevance no deployed re-ranker
   has, so its frontier is an upper bound for policies that know only score and popularity.

Also reported, on the same sample: the model's own tuned policy (preference lists and the
global assignment with its tuned capacity and least-exposed places), for distance to the
frontier; and a deterministic policy that is not shipped, to say how much of that distance a
different assignment could close: **exposure-priced rounds** (``priced_slates``) — round by
round, every member in turn takes the candidate of their tuned preference list (capacity and
+1 quota kept) with the best score minus λ × that candidate's current Gini price, the price
updated after every pick; λ bisected to the same Gini bound.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--members", type=int, default=6000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--gini-ratio", type=float, default=0.70)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--bisections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import rerank_bench as rb

    from recsys import (
        PREFERENCE_DEPTH,
        bisect_price,
        frontier_at,
        heldout_matrix,
        plus_one_quota,
        priced_slates,
        top_k,
    )
    from recsys import metrics as m

    started = time.perf_counter()
    model, train, heldout, _ = rb.load(args.model, args.data)
    n, k = train.n_members, args.k
    relevant_all = heldout_matrix(heldout, n)
    rows, scored = rb.sample_rows(train, relevant_all, args.members, args.seed)
    ids, scores, outside = rb.build_pools(model, rows)
    valid = ids >= 0
    relevant = relevant_all[rows]
    r_idx, c_idx = np.nonzero(valid)
    hits = np.zeros(ids.shape)
    hits[r_idx, c_idx] = np.asarray(relevant[r_idx, ids[r_idx, c_idx]]).ravel() > 0
    hits[~scored] = 0.0
    n_relevant = np.maximum(np.asarray(relevant.sum(axis=1)).ravel(), 1)

    def recall_of(slates):
        return float(
            np.nanmean(m.recall_at_k(slates[scored], relevant[np.flatnonzero(scored)], k=k))
        )

    plain, _ = top_k(ids, scores, k)
    base = {"recall": recall_of(plain), "gini": m.gini(m.exposure_counts(plain, n_members=n))}
    # the frontier's recall counts only the scored rows; scale it to the same mean as recall_of
    share_scored = scored.mean()
    kw = dict(
        ids=ids,
        valid=valid,
        hits=hits,
        n_relevant=n_relevant,
        n_members=n,
        k=k,
        iterations=args.iterations,
    )
    cap = args.gini_ratio * base["gini"]

    relevance = {"model": np.where(valid, scores, 0.0).astype(np.float64)}
    degrees = train.degrees
    in_sample = valid & scored[:, None]
    score_bin = np.digitize(scores, np.quantile(scores[valid], np.linspace(0, 1, 21)[1:-1]))
    degree_bin = np.digitize(
        degrees[np.maximum(ids, 0)], np.quantile(degrees, np.linspace(0, 1, 11)[1:-1])
    )
    cell = score_bin * 10 + degree_bin
    got = np.bincount(cell[in_sample], weights=hits[in_sample], minlength=200)
    seen = np.bincount(cell[in_sample], minlength=200)
    prior = got.sum() / max(seen.sum(), 1)
    rate = (got + 0.5 * prior) / (seen + 0.5)
    relevance["oracle cells"] = np.where(
        valid, rate[cell] + 1e-6 * scores, 0.0
    )  # the score orders within a cell

    results = {
        "model": args.model,
        "members": int(len(rows)),
        "k": k,
        "gini_ratio": args.gini_ratio,
        "unconstrained": base,
        "frontier": {},
    }
    for name, p in relevance.items():
        lam_hi = float(np.quantile(p[valid], 0.99))
        recall, gini, lam = frontier_at(p, cap, lam_hi, args.bisections, **kw)
        results["frontier"][name] = {
            "recall_ratio": recall / (base["recall"] * share_scored),
            "gini_ratio": gini / base["gini"],
            "lambda": lam,
        }

    # the model's own tuned policy on the same pools: its lists, then its global assignment
    prefs, pref_scores, outside_prefs = model.reranker_.preferences(
        rows, ids, scores, PREFERENCE_DEPTH * k, outside=outside
    )
    ours, _ = model.assign(rows, prefs, pref_scores, outside_prefs, k)
    results["ours"] = {
        "recall_ratio": recall_of(ours) / base["recall"],
        "gini_ratio": m.gini(m.exposure_counts(ours, n_members=n)) / base["gini"],
        "params": {
            key: value for key, value in model.rerank_params_.items() if key != "score_scale"
        },
    }

    # exposure-priced rounds on the same lists, capacity and quota; λ bisected to the bound
    quota = plus_one_quota(prefs, outside_prefs, model.reranker_.required_rows(rows), k).astype(
        np.int64
    )
    capacity = model.slate_capacity(train, n_slates=len(rows), k=k).astype(np.int64)
    finite_scores = np.where(prefs >= 0, pref_scores, -np.inf).astype(np.float64)

    def priced(lam):
        slates = priced_slates(prefs, finite_scores, capacity, k, ~outside_prefs, quota, lam)
        return slates, m.gini(m.exposure_counts(slates, n_members=n))

    best, _, lam = bisect_price(
        priced, cap, float(np.quantile(scores[valid], 0.99)), args.bisections + 4
    )
    results["priced_rounds"] = {
        "recall_ratio": recall_of(best) / base["recall"],
        "gini_ratio": m.gini(m.exposure_counts(best, n_members=n)) / base["gini"],
        "bridge_gain": m.bridge_rate(rows, best, model.communities_)
        / max(m.bridge_rate(rows, plain, model.communities_), 1e-12),
        "lambda": lam,
    }
    results["ours"]["bridge_gain"] = m.bridge_rate(rows, ours, model.communities_) / max(
        m.bridge_rate(rows, plain, model.communities_), 1e-12
    )
    results["seconds"] = time.perf_counter() - started

    print(
        f"model {args.model}: {len(rows)} members ({int(scored.sum())} with held-out "
        f"connections), k = {k}"
    )
    print(
        f"unconstrained: recall {base['recall']:.4f}, exposure Gini {base['gini']:.4f}; "
        f"bound: Gini <= {args.gini_ratio:.2f}x"
    )
    print("| relevance the policy knows | best recall at the bound | its Gini |")
    print("| --- | --- | --- |")
    for name, row in results["frontier"].items():
        print(f"| {name} | {row['recall_ratio']:.3f}x | {row['gini_ratio']:.3f}x |")
    print(
        f"| ours (tuned, deterministic) | {results['ours']['recall_ratio']:.3f}x | "
        f"{results['ours']['gini_ratio']:.3f}x |"
        f" (bridges {results['ours']['bridge_gain']:.2f}x)"
    )
    row = results["priced_rounds"]
    print(
        "| exposure-priced rounds on the same lists (not shipped) | "
        f"{row['recall_ratio']:.3f}x | {row['gini_ratio']:.3f}x |"
        f" (bridges {row['bridge_gain']:.2f}x, lambda {row['lambda']:.4f})"
    )
    print(f"({results['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    main()
