"""Link prediction on the real networks: the heuristics against the acceptance models (issue 18).

    .venv/bin/python benchmarks/link_prediction_bench.py
        [--datasets deezer_europe,facebook100_georgetown15] [--members 0] [--json FILE]

On each network, 10% of connections are held out (``holdout_split(fraction=0.1, seed=101)``,
the split of ``pool_bench.py``) and every member with a kept and a held-out connection (or
``--members`` of them drawn at random) gets a ranked list from each method:

* Adamic-Adar and resource allocation over common contacts (``AdamicAdarCandidates``, two hops);
* personalized PageRank by the push (``PersonalizedPageRankCandidates``, α = 0.15, ε = 1e-4);
* truncated Katz, ``β² (A²)[u, v] + β³ (A³)[u, v]`` with β = 0.005 and 0.0005 (walks of
  length two and three; length one is a connection and never proposed), from sparse products;
* the logistic acceptance model and the gradient-boosted one, each as
  ``IntroductionRecommender(acceptance=..., rerank=False, tune_rerank=False)``: the default
  pool of 300 scored by the model, no re-ranking; and the logistic model over pools with
  personalized PageRank added (:data:`MODELS`);
* with ``--ppr-probe``, for each model, its pool ordered by reciprocal-rank fusion of the
  model's order and PPR's order (``merge_pools``): a parameter-free probe of what PPR would add
  as a pair feature, before building one.

Every list excludes the member, their kept connections and opted-out members. Reported per
method: recall@20 pooled (held-out connections found over all held out) and per member (the
mean of :func:`recsys.metrics.recall_at_k`), NDCG@20 (per-member mean of
:func:`recsys.metrics.ndcg_at_k`), recall of the first 300 (for the models, their merged pool),
fit time and ranking time per member (the heuristics' lists are 300 long; the models build the
pool, score it and keep 20). Ratios are to Adamic-Adar.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp

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
K = 20
POOL = 300
#: Two values of β: at 0.005 (about 1 / the mean degree of the campus network) walks of length
#: three weigh as much as common contacts there; at 0.0005 Katz is common contacts with walks of
#: three breaking ties.
KATZ_BETAS = {"katz": 0.005, "katz_small_beta": 0.0005}
HEURISTICS = ("adamic_adar", "resource_allocation", "ppr", *KATZ_BETAS)

#: The acceptance models, as ``IntroductionRecommender`` parameters (re-ranking always off). The
#: default pool is friends of friends 200 + interests 100 + ALS 100 fused to 300; the variants
#: in brackets add personalized PageRank (the best merges of ``pool_bench.py``), and "→ 400"
#: scores a pool of 400, whose first 300 by the model's score are its "recall of 300".
MODELS = {
    "logistic": {},
    "gradient_boosting": {"acceptance": "gradient_boosting"},
    "logistic [fof 300 + ppr 300 + int 15 + als 15]": {
        "n_adamic_adar": 300,
        "n_ppr": 300,
        "n_interests": 15,
        "n_als": 15,
    },
    "logistic [fof 200 + ppr 200 + int 100 + als 100]": {"n_ppr": 200},
    "logistic [fof 300 + ppr 300 + int 15 + als 15 → 400]": {
        "pool_size": 400,
        "n_adamic_adar": 300,
        "n_ppr": 300,
        "n_interests": 15,
        "n_als": 15,
    },
}


class TruncatedKatz:
    """``β² (A²)[u, v] + β³ (A³)[u, v]`` over members ``v`` that may be proposed to ``u``: the
    Katz index (Katz 1953) cut after walks of length three, as link-prediction surveys compare it
    (Lü & Zhou 2011). Plain scipy sparse products, a batch of rows at a time; the exclusions are
    the library sources' (``eligible_`` of a fitted source)."""

    def __init__(self, *, beta: float = 0.005, batch: int = 256):
        self.beta = beta
        self.batch = batch

    def fit(self, network) -> TruncatedKatz:
        from recsys import AdamicAdarCandidates

        exclusions = AdamicAdarCandidates().fit(network)
        self.adjacency_ = sp.csr_array(exclusions.adjacency_, dtype=np.float64)
        self.eligible_ = exclusions.eligible_
        return self

    def candidates(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.adjacency_, self.beta
        ids = np.full((len(rows), n), -1, dtype=np.int32)
        scores = np.full((len(rows), n), -np.inf, dtype=np.float32)
        for start in range(0, len(rows), self.batch):
            part = rows[start : start + self.batch]
            two = a[part] @ a
            score = (b * b * two + b**3 * (two @ a)).toarray()
            score[:, ~self.eligible_] = 0.0
            score[np.arange(len(part)), part] = 0.0
            own = a[part].tocoo()
            score[own.row, own.col] = 0.0
            top = np.argpartition(-score, n - 1, axis=1)[:, :n]
            got = np.take_along_axis(score, top, axis=1)
            order = np.argsort(-got, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            got = np.take_along_axis(got, order, axis=1)
            ids[start : start + len(part)] = np.where(got > 0, top, -1)
            scores[start : start + len(part)] = np.where(got > 0, got, -np.inf)
        return ids, scores


def _heuristic(name: str):
    from recsys import AdamicAdarCandidates, PersonalizedPageRankCandidates

    if name == "adamic_adar":
        return AdamicAdarCandidates()
    if name == "resource_allocation":
        return AdamicAdarCandidates(weighting="resource_allocation")
    if name == "ppr":
        return PersonalizedPageRankCandidates(alpha=0.15, epsilon=1e-4)
    if name in KATZ_BETAS:
        return TruncatedKatz(beta=KATZ_BETAS[name])
    raise ValueError(name)


def _pooled_recall(ids: np.ndarray, relevant, k: int) -> float:
    """Held-out connections in the first ``k`` of each list, over all held out."""
    from recsys import metrics as m

    n_relevant = np.diff(relevant.indptr)
    found = np.rint(m.recall_at_k(ids, relevant, k=k) * n_relevant).sum()
    return round(float(found / n_relevant.sum()), 4)


def _relevance(ids: np.ndarray, relevant) -> dict[str, float]:
    from recsys import metrics as m

    return {
        f"recall_at_{K}_pooled": _pooled_recall(ids, relevant, K),
        f"recall_at_{K}_per_member": round(
            float(np.nanmean(m.recall_at_k(ids, relevant, k=K))), 4
        ),
        f"ndcg_at_{K}": round(float(np.nanmean(m.ndcg_at_k(ids, relevant, k=K))), 4),
        f"pool_recall_at_{POOL}": (
            _pooled_recall(ids, relevant, POOL) if ids.shape[1] >= POOL else None
        ),
    }


def network_table(data_dir: Path, n_members: int, models: list[str], ppr_probe: bool) -> dict:
    from recsys import (
        IntroductionRecommender,
        heldout_matrix,
        holdout_split,
        load_network,
        rank_all,
        top_k,
    )

    net = load_network(data_dir)
    train, heldout = holdout_split(net, fraction=0.1, seed=101)
    held = heldout_matrix(heldout, net.n_members)
    eligible = np.flatnonzero((np.diff(held.indptr) > 0) & (train.degrees > 0))
    rows = eligible
    if n_members and n_members < len(eligible):
        rows = np.sort(np.random.default_rng(0).choice(eligible, n_members, replace=False))
    relevant = held[rows]
    result: dict = {
        "members": int(net.n_members),
        "connections": int(len(net.connections)),
        "heldout": int(len(heldout)),
        "mean_degree_kept": round(float(train.degrees.mean()), 1),
        "rows": int(len(rows)),
        "heldout_of_rows": int(relevant.sum()),
        "methods": {},
    }
    print(f"{data_dir.name}: {len(rows)} members, {int(relevant.sum())} held out", flush=True)

    for name in HEURISTICS:
        t = time.perf_counter()
        method = _heuristic(name).fit(train)
        fit_s = time.perf_counter() - t
        method.candidates(rows[:50], POOL)  # compile before timing
        t = time.perf_counter()
        ids, _ = method.candidates(rows, POOL)
        rank_s = time.perf_counter() - t
        result["methods"][name] = {
            **_relevance(ids, relevant),
            "fit_s": round(fit_s, 1),
            "rank_ms_per_member": round(rank_s / len(rows) * 1e3, 3),
        }
        print(f"  {name:22s} {result['methods'][name]}", flush=True)

    for label in models:
        t = time.perf_counter()
        model = IntroductionRecommender(**MODELS[label], rerank=False, tune_rerank=False).fit(
            train
        )
        fit_s = time.perf_counter() - t
        model.rank(rows[:50], k=K)  # compile before timing
        t = time.perf_counter()
        slates = rank_all(functools.partial(model.rank, rerank=False), rows, k=K)
        rank_s = time.perf_counter() - t
        pool_ids, _ = model.pool(rows)
        figures = _relevance(slates.ids, relevant)
        # the first 300 of the model's order: its pool when that is 300 long, else the model's
        # cut of a longer pool (a learned fusion of the sources)
        scores, _ = model.score_pool(rows, pool_ids)
        ordered, _ = top_k(pool_ids, scores, POOL)
        figures[f"pool_recall_at_{POOL}"] = _relevance(ordered, relevant)[f"pool_recall_at_{POOL}"]
        figures["merged_pool"] = {
            "size": int(pool_ids.shape[1]),
            "recall": _pooled_recall(pool_ids, relevant, pool_ids.shape[1]),
        }
        result["methods"][label] = {
            **figures,
            "fit_s": round(fit_s, 1),
            "rank_ms_per_member": round(rank_s / len(rows) * 1e3, 3),
        }
        print(f"  {label:22s} {result['methods'][label]}", flush=True)
        if ppr_probe:
            fused = _fused_with_ppr(model, train, rows, pool_ids)
            result["methods"][f"{label} ⊕ PPR order (probe)"] = {
                **_relevance(fused, relevant),
                "fit_s": None,
                "rank_ms_per_member": None,
            }
            print(f"    with PPR order {result['methods'][f'{label} ⊕ PPR order (probe)']}")
    return result


def _fused_with_ppr(model, train, rows: np.ndarray, pool_ids: np.ndarray) -> np.ndarray:
    """The model's pool ordered by reciprocal-rank fusion of the model's scores and PPR's."""
    from recsys import PersonalizedPageRankCandidates, merge_pools, top_k

    scores, _ = model.score_pool(rows, pool_ids)
    r, j = np.nonzero(pool_ids >= 0)
    ppr = np.full(pool_ids.shape, -np.inf, dtype=np.float32)
    ppr[r, j] = PersonalizedPageRankCandidates().fit(train).pair_scores(rows[r], pool_ids[r, j])
    width = pool_ids.shape[1]
    orders = {
        "adamic_adar": (top_k(pool_ids, scores, width)[0], None),  # the bit's name only
        "ppr": (top_k(pool_ids, ppr, width)[0], None),
    }
    return merge_pools(orders, pool_size=K)[0]


def markdown(name: str, table: dict) -> str:
    """One network's table, with ratios to Adamic-Adar."""
    methods = table["methods"]
    aa = methods["adamic_adar"]
    cols = [
        (f"recall_at_{K}_pooled", f"recall@{K} pooled"),
        (f"recall_at_{K}_per_member", f"recall@{K} per member"),
        (f"ndcg_at_{K}", f"NDCG@{K}"),
        (f"pool_recall_at_{POOL}", f"recall of {POOL}"),
    ]
    lines = [
        f"**{name}**: {table['members']:,} members, {table['connections']:,} connections "
        f"({table['heldout']:,} held out); {table['rows']:,} members ranked, "
        f"{table['heldout_of_rows']:,} of their connections held out",
        "",
        "| method | " + " | ".join(label for _, label in cols) + " | fit s | rank ms/member |",
        "| --- | " + " | ".join("---" for _ in cols) + " | ---: | ---: |",
    ]
    for method, f in methods.items():
        cells = []
        for key, _ in cols:
            if f[key] is None:
                cells.append("–")
            elif method == "adamic_adar" or not aa[key]:
                cells.append(f"{f[key]:.4f}")
            else:
                cells.append(f"{f[key]:.4f} ({f[key] / aa[key]:.2f}×)")
        lines.append(
            f"| {method} | "
            + " | ".join(cells)
            + f" | {f['fit_s'] if f['fit_s'] is not None else '–'}"
            + f" | {f['rank_ms_per_member'] if f['rank_ms_per_member'] is not None else '–'} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="deezer_europe,facebook100_georgetown15")
    parser.add_argument("--members", type=int, default=0, help="0: every eligible member")
    parser.add_argument(
        "--models", default=",".join(MODELS), help="labels of MODELS, comma-separated"
    )
    parser.add_argument("--ppr-probe", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = {
        name: network_table(DATASETS / name, args.members, models, args.ppr_probe)
        for name in args.datasets.split(",")
        if name
    }
    for name, table in out.items():
        print()
        print(markdown(name, table))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
