"""Pool recall per candidate source and merged, and the time of each source (issue 18).

    .venv/bin/python benchmarks/pool_bench.py [--datasets deezer_europe,facebook100_georgetown15]
        [--members 0] [--timing-data /tmp/syn1m] [--timing-members 3000] [--json FILE]

On each network, 10% of connections are held out (``holdout_split(fraction=0.1, seed=101)``)
and the members with a kept and a held-out connection (all of them, or ``--members`` drawn at
random) are asked for candidates. Pool recall at n is the share of their held-out connections
among the first n candidates of a list (pooled over members, as ``pool_recall``):

* each source alone, 300 long: the model's friends of friends (Adamic-Adar + 0.03 × walks of
  length three through the 64 most-walked two-hop members), plain Adamic-Adar, shared interests,
  ALS, and personalized PageRank (``PersonalizedPageRankCandidates``) at several settings;
* the model's default merged pool, ``IntroductionRecommender(tune_rerank=False).fit(train)
  .pool(rows)`` (its sources' lists of 200 + 100 + 100 fused by reciprocal rank to 300; the
  script checks that ``merge_pools`` over the model's own sources gives the same pool);
* the union of sources' lists (no cut: up to the sum of their lengths);
* merged pools of 300 with PPR, replacing or joining friends of friends (``merge_pools``).

Then, on ``--timing-data`` (the 1M-member synthetic set), the time per member of each source
for ``--timing-members`` random members: one thread over the whole batch (the kernels' serial
path, best of three), and one request at a time (Python overhead included, as serving calls
it). ALS is fitted with 3 iterations there: the search time does not depend on them.
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

# ../shared/datasets from a checkout, ../../shared/datasets from a worktree under /work/wt
DATASETS = next(
    (
        p
        for p in (ROOT.parent / "shared" / "datasets", ROOT.parents[1] / "shared" / "datasets")
        if p.is_dir()
    ),
    ROOT.parent / "shared" / "datasets",
)
CUTS = (20, 100, 300)
#: Members with at most this many kept connections are reported apart ("@300 few").
FEW = 3

#: The PPR settings measured: (label, parameters).
PPR_SETTINGS = [
    ("ppr", dict(alpha=0.15, epsilon=1e-4)),
    ("ppr_by_degree", dict(alpha=0.15, epsilon=1e-4, normalize="degree")),
    ("ppr_coarse", dict(alpha=0.3, epsilon=3e-4)),
    ("ppr_fine", dict(alpha=0.15, epsilon=3e-5)),
]

#: Merged pools of 300: (label, {source: list length}); "ppr" is the first PPR setting.
MIXES = [
    ("current: fof 200 + interests 100 + als 100", {"fof": 200, "interests": 100, "als": 100}),
    ("ppr 200 + interests 100 + als 100", {"ppr": 200, "interests": 100, "als": 100}),
    ("ppr 300 + interests 100 + als 100", {"ppr": 300, "interests": 100, "als": 100}),
    ("ppr 300 + interests 50 + als 50", {"ppr": 300, "interests": 50, "als": 50}),
    ("ppr 300 + interests 30 + als 30", {"ppr": 300, "interests": 30, "als": 30}),
    ("ppr 300 + interests 15 + als 15", {"ppr": 300, "interests": 15, "als": 15}),
    (
        "fof 200 + ppr 200 + interests 100 + als 100",
        {"fof": 200, "ppr": 200, "interests": 100, "als": 100},
    ),
    (
        "fof 300 + ppr 300 + interests 30 + als 30",
        {"fof": 300, "ppr": 300, "interests": 30, "als": 30},
    ),
    (
        "fof 300 + ppr 300 + interests 15 + als 15",
        {"fof": 300, "ppr": 300, "interests": 15, "als": 15},
    ),
    ("fof 300 + ppr 300", {"fof": 300, "ppr": 300}),
]

UNIONS = [
    (
        "fof 200 ∪ interests 100 ∪ als 100 (current lists)",
        {"fof": 200, "interests": 100, "als": 100},
    ),
    ("ppr 300 ∪ interests 100 ∪ als 100", {"ppr": 300, "interests": 100, "als": 100}),
    ("fof 300 ∪ ppr 300", {"fof": 300, "ppr": 300}),
]

#: merge_pools knows sources by their bits' names.
BIT_NAME = {"fof": "adamic_adar", "interests": "interests", "als": "als", "ppr": "ppr"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="deezer_europe,facebook100_georgetown15")
    parser.add_argument("--members", type=int, default=0, help="0: every eligible member")
    parser.add_argument("--timing-data", default="/tmp/syn1m")
    parser.add_argument("--timing-members", type=int, default=3000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    out: dict = {"recall": {}, "timing": None}
    for name in args.datasets.split(","):
        if name:
            out["recall"][name] = recall_tables(DATASETS / name, args.members)
    if args.timing_data and args.timing_members:
        out["timing"] = timing_table(args.timing_data, args.timing_members)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


def _sources(als_iterations: int = 15) -> dict:
    from recsys import (
        AdamicAdarCandidates,
        ALSCandidates,
        InterestOverlapCandidates,
        PersonalizedPageRankCandidates,
    )

    made = {
        "fof": AdamicAdarCandidates(three_hop_weight=0.03, three_hop_middles=64),
        "adamic_adar": AdamicAdarCandidates(),
        "interests": InterestOverlapCandidates(max_df=0.05),
        "als": ALSCandidates(iterations=als_iterations, random_state=0),
    }
    for label, params in PPR_SETTINGS:
        made[label] = PersonalizedPageRankCandidates(**params)
    return made


def _recall_at(ids: np.ndarray, relevant, total: int, few: np.ndarray) -> dict[str, float]:
    """Recall at each cut, and at 300 over the members with few kept connections (``few``)."""
    out = {}
    for n in CUTS:
        head = ids[:, :n]
        r, j = np.nonzero(head >= 0)
        hits = np.asarray(relevant[r, head[r, j]]).ravel()
        out[f"@{n}"] = round(int(hits.sum()) / total, 4)
    out["@300 few"] = round(int(hits[few[r]].sum()) / int(relevant[few].sum()), 4)
    return out


def _mean_row_auc(values: np.ndarray, hit: np.ndarray, real: np.ndarray) -> float:
    """Mean over rows (with a hit and a miss) of the AUC of ``values`` for ``hit`` among the
    ``real`` entries; ties count one half."""
    from scipy.stats import rankdata

    filled = np.where(real, values, -np.inf)
    ranks = rankdata(filled, axis=1) - (~real).sum(axis=1, keepdims=True)  # padding ranks lowest
    pos = (hit & real).sum(axis=1)
    neg = real.sum(axis=1) - pos
    ok = (pos > 0) & (neg > 0)
    rank_sum = np.where(hit & real, ranks, 0).sum(axis=1)
    auc = (rank_sum[ok] - pos[ok] * (pos[ok] + 1) / 2) / (pos[ok] * neg[ok])
    return float(auc.mean())


def _union_recall(lists: list[np.ndarray], relevant, total: int) -> tuple[float, float]:
    """Recall of the union of the lists, and its mean size per member."""
    both = np.hstack(lists).astype(np.int64)
    both = np.where(both >= 0, both, -1)
    both.sort(axis=1)
    first = np.ones_like(both, dtype=bool)
    first[:, 1:] = both[:, 1:] != both[:, :-1]
    keep = first & (both >= 0)
    r, j = np.nonzero(keep)
    hits = int(np.asarray(relevant[r, both[r, j]]).ravel().sum())
    return round(hits / total, 4), round(float(keep.sum(axis=1).mean()), 1)


def recall_tables(data_dir: Path, n_members: int) -> dict:
    from recsys import (
        IntroductionRecommender,
        heldout_matrix,
        holdout_split,
        load_network,
        merge_pools,
    )

    net = load_network(data_dir)
    train, heldout = holdout_split(net, fraction=0.1, seed=101)
    held = heldout_matrix(heldout, net.n_members)
    eligible = np.flatnonzero((np.diff(held.indptr) > 0) & (train.degrees > 0))
    rows = eligible
    if n_members and n_members < len(eligible):
        rows = np.sort(np.random.default_rng(0).choice(eligible, n_members, replace=False))
    relevant = held[rows]
    total = int(relevant.sum())
    few = train.degrees[rows] <= FEW
    result: dict = {
        "members": int(net.n_members),
        "connections": int(len(net.connections)),
        "mean_degree": round(float(train.degrees.mean()), 1),
        "rows": int(len(rows)),
        "heldout_of_rows": total,
        "sources": {},
    }
    print(f"{data_dir.name}: {len(rows)} members, {total} held-out connections", flush=True)

    lists, fitted = {}, {}
    for label, src in _sources().items():
        t = time.perf_counter()
        fitted[label] = src.fit(train)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        ids, _ = src.candidates(rows, 300)
        per_member = (time.perf_counter() - t) / len(rows)
        lists[label] = ids
        result["sources"][label] = {
            **_recall_at(ids, relevant, total, few),
            "filled": round(float((ids >= 0).mean()), 3),
            "fit_s": round(fit_s, 1),
            "ms_per_member_2_threads": round(per_member * 1e3, 3),
        }
        print(f"  {label:14s} {result['sources'][label]}", flush=True)

    # why rank by PPR rather than PPR / degree: the degree of those the members went on to meet
    degrees = train.degrees.astype(np.float64)
    r, j = np.nonzero(relevant)
    result["mean_degree_of"] = {
        "heldout_partners": round(float(degrees[j].mean()), 1),
        **{
            f"{label}_top300": round(float(degrees[lists[label][lists[label] >= 0]].mean()), 1)
            for label in ("fof", "ppr", "ppr_by_degree")
        },
    }

    t = time.perf_counter()
    model = IntroductionRecommender(tune_rerank=False).fit(train)
    fit_s = time.perf_counter() - t
    pool_ids, _ = model.pool(rows)
    result["default_pool"] = {
        **_recall_at(pool_ids, relevant, total, few),
        "fit_s": round(fit_s, 1),
    }
    sources = {
        "fof": model.sources_["adamic_adar"],
        "interests": model.sources_["interests"],
        "als": model.sources_["als"],
        "ppr": fitted["ppr"],
    }
    found: dict = {}

    def listed(name: str, n: int) -> np.ndarray:
        if (name, n) not in found:
            found[name, n] = sources[name].candidates(rows, n)[0]
        return found[name, n]

    def merged(sizes: dict[str, int]) -> np.ndarray:
        lists = {BIT_NAME[k]: (listed(k, n), None) for k, n in sizes.items()}
        return merge_pools(lists, pool_size=300)[0]

    result["default_pool"]["equals_merge_of_model_sources"] = bool(
        np.array_equal(merged(MIXES[0][1]), pool_ids)
    )
    print(f"  default pool {result['default_pool']}", flush=True)

    # PPR as a pair feature, before the lead decides: how well it orders the default pool
    scores, _ = model.features_.score_pools(rows, pool_ids, model.acceptance_)
    r, j = np.nonzero(pool_ids >= 0)
    hit = np.zeros(pool_ids.shape, bool)
    hit[r, j] = np.asarray(relevant[r, pool_ids[r, j]]).ravel() > 0
    by = {"model_score": scores.astype(np.float64)}
    for label in ("ppr", "ppr_by_degree"):
        by[label] = np.full(pool_ids.shape, -np.inf)
        by[label][r, j] = fitted[label].pair_scores(rows[r], pool_ids[r, j])
    result["auc_within_default_pool"] = {
        label: round(_mean_row_auc(values, hit, pool_ids >= 0), 4) for label, values in by.items()
    }
    print(f"  AUC within the default pool {result['auc_within_default_pool']}", flush=True)

    result["merged"] = {}
    for label, sizes in MIXES:
        result["merged"][label] = _recall_at(merged(sizes), relevant, total, few)
        print(f"  merged {label}: {result['merged'][label]}", flush=True)
    result["union"] = {}
    for label, sizes in UNIONS:
        recall, size = _union_recall([listed(k, n) for k, n in sizes.items()], relevant, total)
        result["union"][label] = {"recall": recall, "mean_size": size}
        print(f"  union {label}: {result['union'][label]}", flush=True)
    return result


def timing_table(data_dir: str, n_members: int) -> dict:
    import numba
    from threadpoolctl import threadpool_limits

    from recsys import load_network, merge_pools

    t = time.perf_counter()
    net = load_network(data_dir)
    out: dict = {
        "members": int(net.n_members),
        "connections": int(len(net.connections)),
        "load_s": round(time.perf_counter() - t, 1),
        "rows": n_members,
        "sources": {},
    }
    print(f"timing on {data_dir}: {net.n_members} members", flush=True)
    rows = np.sort(np.random.default_rng(0).choice(net.n_members, n_members, replace=False))
    lists = {}
    threads = numba.get_num_threads()
    for label, src in _sources(als_iterations=3).items():
        t = time.perf_counter()
        src.fit(net)
        fit_s = time.perf_counter() - t
        src.candidates(rows[:40], 300)  # compile both paths before timing
        numba.set_num_threads(1)
        try:
            with threadpool_limits(1):
                src.candidates(rows[:5], 300)
                best = np.inf
                for _ in range(3):
                    t = time.perf_counter()
                    ids, _ = src.candidates(rows, 300)
                    best = min(best, time.perf_counter() - t)
                t = time.perf_counter()
                for row in rows[:200]:
                    src.candidates(row, 300)
                one = (time.perf_counter() - t) / 200
        finally:
            numba.set_num_threads(threads)
        lists[label] = ids
        out["sources"][label] = {
            "fit_s": round(fit_s, 1),
            "ms_per_member_one_thread": round(best / len(rows) * 1e3, 3),
            "ms_per_request": round(one * 1e3, 3),
            "filled": round(float((ids >= 0).mean()), 3),
        }
        print(f"  {label:14s} {out['sources'][label]}", flush=True)
    for label, sizes in (MIXES[0], MIXES[4]):
        found = {BIT_NAME[k]: (lists[k][:, :n], None) for k, n in sizes.items()}
        with threadpool_limits(1):
            numba.set_num_threads(1)
            try:
                merge_pools(found, pool_size=300)
                t = time.perf_counter()
                merge_pools(found, pool_size=300)
                merge_s = time.perf_counter() - t
            finally:
                numba.set_num_threads(threads)
        out[f"merge {label}"] = round(merge_s / len(rows) * 1e3, 3)
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
