"""How social the synthetic network is: its figures between Deezer's and Georgetown15's.

    .venv/bin/python benchmarks/synthetic_bench.py          # the default size and 100,000 members
    .venv/bin/python benchmarks/synthetic_bench.py --sizes 20000 --chung-lu --no-real
    .venv/bin/python benchmarks/synthetic_bench.py --sizes 20000 --set triadic_closure=0.3
    /usr/bin/time -v .venv/bin/python benchmarks/synthetic_bench.py --generate 1000000

For the synthetic network at each size (``recsys.synthetic_network(n, seed=--seed)``, generator
keywords from ``--set``), with ``--chung-lu`` a Chung-Lu draw on the same activities (no triadic
closure, no taste homophily, both ends of a connection drawn by activity, as the generator drew
them before issue 17), and for each real network found under ``--datasets`` (``deezer_europe``,
``facebook100_georgetown15``), one row of:

- ``aa_recall``: Adamic-Adar recall@20 on a 10% random hold-out (``recsys.holdout_split`` with
  the connection times dropped, so every network is split alike), over the members with a kept
  and a held-out connection: hits pooled over their held-out connections; slates from
  ``AdamicAdarCandidates().fit(train).candidates(rows, 20)``. ``aa_recall_newest`` and
  ``two_hop_newest`` hold out the synthetic network's newest 10% instead, as ``recsys train``
  splits it.
- ``clustering``: mean local clustering coefficient of ``--sample`` random members with at
  least two connections (igraph ``transitivity_local_undirected``; members with fewer are left
  out, as ``transitivity_avglocal_undirected`` leaves them by default).
- ``degree_cv``, ``degree_gini``, ``max_over_median``: the spread of degrees.
- ``two_hop``: share of held-out connections whose members share a kept contact.
- ``heldout_degree_corr``: Pearson correlation between a member's kept degree and the number of
  held-out connections they have. A random hold-out draws each member's held-out connections in
  proportion to their degree in any network, so this mostly tracks the spread of degrees.
- ``heldout_median_degree``: the median kept degree of the members of held-out connections over
  the median member's: how far held-out connections lean to the popular.
- ``pool_degree_auc``: how well the candidate's degree alone picks the held-out connections
  among a member's 100 best Adamic-Adar candidates (AUC per member, averaged over ``--sample``
  members with a hit and a miss in the pool; 0.5: degree says nothing more). This is the
  Chung-Lu problem: where connections are drawn in proportion to both degrees, the popular
  candidate is the likely one whatever the structure, so recall and spreading exposure pull
  against each other.

Prints a Markdown table and, with ``--json FILE``, writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

import recsys  # noqa: E402

DATASETS = Path("/work/shared/datasets")
REAL = ("deezer_europe", "facebook100_georgetown15")
#: Chung-Lu pairs inside and across communities, as the generator drew them before issue 17.
CHUNG_LU = {"triadic_closure": 0.0, "interest_homophily": 0.0, "degree_preference": 1.0}
K = 20
POOL = 100


def _gini(values: np.ndarray) -> float:
    v = np.sort(values.astype(np.float64))
    n = len(v)
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def _hits(heldout: np.ndarray, rows: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """(R, K) boolean: is ``ids[r, j]`` a held-out connection of ``rows[r]``?"""
    held = np.concatenate(
        [
            heldout[:, 0].astype(np.int64) * n + heldout[:, 1],
            heldout[:, 1].astype(np.int64) * n + heldout[:, 0],
        ]
    )
    held.sort()
    keys = rows[:, None].astype(np.int64) * n + np.maximum(ids, 0)
    pos = np.minimum(np.searchsorted(held, keys), len(held) - 1)
    return (held[pos] == keys) & (ids >= 0)


def heldout_figures(net: recsys.Network, *, seed: int, sample: int) -> dict[str, float]:
    """AA recall@20, the two-hop share, the degree figures of the held-out connections."""
    n = net.n_members
    train, heldout = recsys.holdout_split(net, fraction=0.1, seed=seed)
    kept = train.degrees
    held_degree = np.bincount(heldout.ravel(), minlength=n)
    rows = np.flatnonzero((kept > 0) & (held_degree > 0))
    source = recsys.AdamicAdarCandidates().fit(train)
    ids, _ = source.candidates(rows, K)
    recall = _hits(heldout, rows, ids, n).sum() / held_degree[rows].sum()
    adjacency = train.adjacency
    common = adjacency[heldout[:, 0]].multiply(adjacency[heldout[:, 1]]).sum(axis=1)
    return {
        "aa_recall": float(recall),
        "two_hop": float(np.mean(np.asarray(common).ravel() > 0)),
        "heldout_degree_corr": float(np.corrcoef(kept, held_degree)[0, 1]),
        "heldout_median_degree": float(np.median(kept[heldout.ravel()]) / np.median(kept)),
        "pool_degree_auc": _pool_degree_auc(source, heldout, rows, kept, seed=seed, sample=sample),
    }


def _pool_degree_auc(
    source: recsys.AdamicAdarCandidates,
    heldout: np.ndarray,
    rows: np.ndarray,
    kept: np.ndarray,
    *,
    seed: int,
    sample: int,
) -> float:
    """Mean over sampled members of the AUC of candidate degree for hits in the AA pool."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(rows, size=min(sample, len(rows)), replace=False))
    ids, _ = source.candidates(rows, POOL)
    hit = _hits(heldout, rows, ids, len(kept))
    valid = ids >= 0
    # Missing candidates rank below every real one and count as neither hit nor miss.
    degree = np.where(valid, kept[np.maximum(ids, 0)], -1).astype(np.float64)
    ranks = rankdata(degree, axis=1)
    positives = hit.sum(axis=1)
    negatives = (valid & ~hit).sum(axis=1)
    missing = (~valid).sum(axis=1)
    ok = (positives > 0) & (negatives > 0)
    # Mann-Whitney U of the hits' ranks among the real candidates.
    u = (ranks * hit).sum(axis=1) - positives * missing - positives * (positives + 1) / 2
    return float(np.mean(u[ok] / (positives[ok] * negatives[ok])))


def clustering(net: recsys.Network, *, seed: int, sample: int) -> float:
    import igraph as ig

    graph = ig.Graph(n=net.n_members, edges=net.connections)
    eligible = np.flatnonzero(net.degrees >= 2)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(sample, len(eligible)), replace=False)
    return float(np.mean(graph.transitivity_local_undirected(vertices=chosen.tolist())))


def describe(net: recsys.Network, name: str, *, seed: int, sample: int) -> dict:
    started = time.perf_counter()
    degree = net.degrees
    row = {
        "network": name,
        "members": net.n_members,
        "connections": len(net.connections),
        "mean_degree": float(degree.mean()),
        **heldout_figures(net.with_connections(net.connections, None), seed=seed, sample=sample),
    }
    if net.connection_times is not None:
        newest = heldout_figures(net, seed=seed, sample=sample)
        row["aa_recall_newest"] = newest["aa_recall"]
        row["two_hop_newest"] = newest["two_hop"]
    row |= {
        "clustering": clustering(net, seed=seed, sample=sample),
        "degree_cv": float(degree.std() / degree.mean()),
        "degree_gini": _gini(degree),
        "max_over_median": float(degree.max() / np.median(degree)),
        "seconds": time.perf_counter() - started,
    }
    return row


COLUMNS = [
    ("network", "network", "{}"),
    ("members", "members", "{:,}"),
    ("connections", "connections", "{:,}"),
    ("mean_degree", "mean degree", "{:.1f}"),
    ("aa_recall", "AA recall@20", "{:.3f}"),
    ("aa_recall_newest", "(newest held out)", "{:.3f}"),
    ("clustering", "clustering", "{:.3f}"),
    ("degree_cv", "degree CV", "{:.2f}"),
    ("degree_gini", "degree Gini", "{:.2f}"),
    ("max_over_median", "max / median", "{:.0f}"),
    ("two_hop", "held out within 2 hops", "{:.2f}"),
    ("two_hop_newest", "(newest)", "{:.2f}"),
    ("heldout_degree_corr", "corr(degree, held out)", "{:.2f}"),
    ("heldout_median_degree", "held-out degree / median", "{:.1f}"),
    ("pool_degree_auc", "degree AUC in AA pool", "{:.3f}"),
]


def markdown(rows: list[dict]) -> str:
    lines = [
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for row in rows:
        cells = [fmt.format(row[key]) if key in row else "—" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def generate(n_members: int, seed: int, overrides: dict) -> None:
    """Time one generation (run under ``/usr/bin/time -v`` for the peak memory)."""
    started = time.perf_counter()
    tables = recsys.generate_tables(n_members, seed=seed, **overrides)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "members": n_members,
                "connections": len(tables["connections"]),
                "interest_rows": len(tables["interests"]),
                "seconds": round(seconds, 2),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--split-seed", type=int, default=13)
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--chung-lu", action="store_true", help="add the Chung-Lu draw's rows")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--generate", type=int, metavar="N", help="only time one generation")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    if args.generate:
        generate(args.generate, args.seed, overrides)
        return
    if args.sizes is None:
        config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
        args.sizes = [int(config["synthetic"]["members"]), 100_000]

    rows = []
    for size in args.sizes:
        variants = [("synthetic", overrides)]
        if args.chung_lu:
            variants.append(("Chung-Lu", {**overrides, **CHUNG_LU}))
        for label, kwargs in variants:
            net = recsys.synthetic_network(size, seed=args.seed, **kwargs)
            rows.append(describe(net, label, seed=args.split_seed, sample=args.sample))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if not args.no_real:
        for name in REAL:
            path = args.datasets / name
            if not path.is_dir():
                print(f"skipped {name}: {path} is absent", file=sys.stderr)
                continue
            net = recsys.load_network(path)
            rows.append(describe(net, name, seed=args.split_seed, sample=args.sample))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
