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
frontier.
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
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _top_mask(valid: np.ndarray, adjusted: np.ndarray, k: int) -> np.ndarray:
    """(R, P) 0/1: each row's k best of ``adjusted`` among its valid entries."""
    a = np.where(valid, adjusted, -np.inf)
    kk = min(k, a.shape[1])
    top = np.argpartition(-a, kk - 1, axis=1)[:, :kk]
    out = np.zeros(a.shape)
    np.put_along_axis(out, top, 1.0, axis=1)
    out[~valid] = 0.0
    return out


def frontier_point(p, ids, valid, hits, n_relevant, n_members, k, lam, iterations):
    """Frank-Wolfe mix of slates for one λ: (recall, gini) of the mix."""
    from recsys import _metrics as m

    safe = np.maximum(ids, 0)
    x = _top_mask(valid, p, k)
    for t in range(iterations):
        exposure = np.bincount(ids[valid], weights=x[valid], minlength=n_members)
        price = (2.0 * scipy.stats.rankdata(exposure) - n_members - 1.0) / n_members
        step = _top_mask(valid, p - lam * price[safe], k)
        gamma = 2.0 / (t + 3.0)
        x = (1.0 - gamma) * x + gamma * step
    exposure = np.bincount(ids[valid], weights=x[valid], minlength=n_members)
    recall = float(np.mean((x * hits).sum(axis=1) / n_relevant))
    return recall, m.gini(exposure)


def frontier_at(p, gini_cap, lam_hi, steps, **kw):
    """Bisect λ for the largest recall whose mix meets ``gini_cap``; returns (recall, gini, λ)."""
    lo, hi = 0.0, lam_hi
    recall, gini = frontier_point(p, lam=hi, **kw)
    while gini > gini_cap:  # grow the bracket until the bound is met
        lo, hi = hi, hi * 2
        recall, gini = frontier_point(p, lam=hi, **kw)
    best = (recall, gini, hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        recall, gini = frontier_point(p, lam=mid, **kw)
        if gini <= gini_cap:
            hi, best = mid, (recall, gini, mid)
        else:
            lo = mid
    return best


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
    from recsys import _metrics as m
    from recsys import heldout_matrix, top_k
    from recsys._rerank import PREFERENCE_DEPTH

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
        return float(np.nanmean(m.recall_at_k(slates[scored], relevant[np.flatnonzero(scored)], k=k)))

    plain, _ = top_k(ids, scores, k)
    base = {"recall": recall_of(plain), "gini": m.gini(m.exposure_counts(plain, n_members=n))}
    # the frontier's recall counts only the scored rows; scale it to the same mean as recall_of
    share_scored = scored.mean()
    kw = dict(ids=ids, valid=valid, hits=hits, n_relevant=n_relevant, n_members=n, k=k, iterations=args.iterations)
    cap = args.gini_ratio * base["gini"]

    relevance = {"model": np.where(valid, scores, 0.0).astype(np.float64)}
    degrees = train.degrees
    in_sample = valid & scored[:, None]
    score_bin = np.digitize(scores, np.quantile(scores[valid], np.linspace(0, 1, 21)[1:-1]))
    degree_bin = np.digitize(degrees[np.maximum(ids, 0)], np.quantile(degrees, np.linspace(0, 1, 11)[1:-1]))
    cell = score_bin * 10 + degree_bin
    got = np.bincount(cell[in_sample], weights=hits[in_sample], minlength=200)
    seen = np.bincount(cell[in_sample], minlength=200)
    prior = got.sum() / max(seen.sum(), 1)
    rate = (got + 0.5 * prior) / (seen + 0.5)
    relevance["oracle cells"] = np.where(valid, rate[cell] + 1e-6 * scores, 0.0)  # the score orders within a cell

    results = {"model": args.model, "members": int(len(rows)), "k": k, "gini_ratio": args.gini_ratio,
               "unconstrained": base, "frontier": {}}
    for name, p in relevance.items():
        lam_hi = float(np.quantile(p[valid], 0.99))
        recall, gini, lam = frontier_at(p, cap, lam_hi, args.bisections, **kw)
        results["frontier"][name] = {
            "recall_ratio": recall / (base["recall"] * share_scored),
            "gini_ratio": gini / base["gini"],
            "lambda": lam,
        }

    # the model's own tuned policy on the same pools
    params = model.rerank_params_
    reranker = model._make_reranker(train, model.communities_, **{name: params[name] for name in (
        "bridge_weight", "degree_penalty", "bound_tolerance", "bonus", "score_scale") if name in params})
    from recsys._rerank import _gather_mask, assign_with_capacity, plus_one_quota

    prefs, pref_scores, _ = reranker.preferences(rows, ids, scores, PREFERENCE_DEPTH * k, outside=outside)
    outside_prefs = _gather_mask(ids, outside, prefs)
    quota = plus_one_quota(prefs, outside_prefs, reranker.required_rows(rows), k)
    capacity = model.slate_capacity(train, n_slates=len(rows), k=k)
    ours, _ = assign_with_capacity(prefs, pref_scores, capacity, k, inside=~outside_prefs, max_inside=quota,
                                   floor_slots=model._floor_slots(k), floor_depth=model._floor_depth(k))
    results["ours"] = {"recall_ratio": recall_of(ours) / base["recall"],
                       "gini_ratio": m.gini(m.exposure_counts(ours, n_members=n)) / base["gini"],
                       "params": {key: value for key, value in params.items() if key != "score_scale"}}
    results["seconds"] = time.perf_counter() - started

    print(f"model {args.model}: {len(rows)} members ({int(scored.sum())} with held-out connections), k = {k}")
    print(f"unconstrained: recall {base['recall']:.4f}, exposure Gini {base['gini']:.4f}; bound: Gini <= {args.gini_ratio:.2f}x")
    print("| relevance the policy knows | best recall at the bound | its Gini |")
    print("| --- | --- | --- |")
    for name, row in results["frontier"].items():
        print(f"| {name} | {row['recall_ratio']:.3f}x | {row['gini_ratio']:.3f}x |")
    print(f"| ours (tuned, deterministic) | {results['ours']['recall_ratio']:.3f}x | {results['ours']['gini_ratio']:.3f}x |")
    print(f"({results['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    main()
