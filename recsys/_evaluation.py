"""Evaluate slates on held-out connections: relevance, reach and equity under DESIGN.md's names."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import metrics as m
from recsys._candidates import AdamicAdarCandidates
from recsys._communities import co_membership
from recsys._split import heldout_matrix
from recsys.data import Network

__all__ = ["Slates", "rank_all", "evaluate_slates", "evaluation_members", "pool_recall"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slates:
    """Slates of a batch of members: ``member_rows`` (R,) int64, ``ids`` (R, k) int32, ``scores``
    (R, k) float32.
    """

    member_rows: np.ndarray
    ids: np.ndarray
    scores: np.ndarray


def evaluation_members(
    network: Network, *, max_members: int | None = None, seed: int = 0
) -> np.ndarray:
    """Rows to rank for evaluation: every member, or a seeded sample of ``max_members``."""
    rows = np.arange(network.n_members, dtype=np.int64)
    if max_members is not None and max_members < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_members, replace=False))
    return rows


def rank_all(
    rank: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    member_rows: np.ndarray,
    *,
    k: int,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> Slates:
    """Call ``rank(rows, k)`` over ``member_rows`` in batches and stack the results."""
    ids, scores = [], []
    for start in range(0, len(member_rows), batch_size):
        batch = member_rows[start : start + batch_size]
        i, s = rank(batch, k)
        ids.append(i)
        scores.append(s)
        if progress is not None:
            progress(len(batch))
    if not ids:
        return Slates(member_rows, np.empty((0, k), np.int32), np.empty((0, k), np.float32))
    return Slates(member_rows, np.vstack(ids), np.vstack(scores))


def evaluate_slates(
    slates: Slates,
    *,
    train: Network,
    heldout: np.ndarray,
    communities: np.ndarray,
    k: int,
    min_group_size: int = 20,
    atkinson_epsilon: float = 0.5,
    plus_one_rows: np.ndarray | None = None,
    include_baseline: bool = True,
    partitions: dict[str, np.ndarray] | None = None,
    ensemble: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Every DESIGN.md metric for one set of slates, and the same for Adamic-Adar's.

    Relevance (``recall_at_K`` per member and ``recall_at_K/pooled``, ``ndcg_at_K``) is measured
    over the ranked members who have at least one held-out and one training connection; it is
    left out when nothing was held out. Exposure figures count every slate. Equity is computed
    per sensitive attribute of ``train.sensitive`` ("undisclosed" a group of its own; groups
    smaller than ``min_group_size`` are suppressed) and per network-size tier, and is returned
    only in aggregate.

    Bridging is measured three ways: ``bridge_rate`` under ``communities`` (the model's own
    partition, as DESIGN.md defines it); ``bridge_rate/ensemble``, the mean over slate entries
    of the share of the model's ``ensemble`` partitions (n, M) that separate the two members;
    and ``bridge_rate/holdout_partition``, the median over ``partitions`` the model never saw
    (:func:`recsys.evaluation_partitions`), so that no figure can be bought by fitting one
    partition's boundaries.

    With ``include_baseline``, plain Adamic-Adar slates of the same members on the same graph
    are measured alike, under ``baseline/adamic_adar/``: every figure stands beside its peer.

    Returns
    -------
    metrics : dict of flat metric name → float
    tables : dict of name → per-group DataFrame (``equity/ATTR/exposure``, ``equity/ATTR/recall``)
    """
    rows, ids = slates.member_rows, slates.ids[:, :k]
    metrics, tables = _figures(
        rows, ids, train=train, heldout=heldout, communities=communities, k=k,
        min_group_size=min_group_size, atkinson_epsilon=atkinson_epsilon,
        plus_one_rows=plus_one_rows, partitions=partitions, ensemble=ensemble,
    )  # fmt: skip
    if include_baseline:
        baseline_ids, _ = AdamicAdarCandidates().fit(train).candidates(rows, k)
        base, _ = _figures(
            rows, baseline_ids, train=train, heldout=heldout, communities=communities, k=k,
            min_group_size=min_group_size, atkinson_epsilon=atkinson_epsilon,
            plus_one_rows=None, partitions=partitions, ensemble=ensemble,
        )  # fmt: skip
        for name in BASELINE_FIGURES:
            for key, value in base.items():
                if key == name.replace("K", str(k)) or (
                    name.endswith("/") and key.startswith(name)
                ):
                    metrics[f"baseline/adamic_adar/{key}"] = value
    return metrics, tables


#: The figures measured for the Adamic-Adar peer too (a name ending in ``/`` covers its family).
BASELINE_FIGURES = (
    "recall_at_K",
    "recall_at_K/pooled",
    "ndcg_at_K",
    "coverage",
    "bridge_rate",
    "bridge_rate/ensemble",
    "bridge_rate/holdout_partition",
    "exposure_gini",
    "exposure_atkinson",
    "equity/",
    "network_size/exposure_ratio",
)


def _figures(
    rows, ids, *, train, heldout, communities, k, min_group_size, atkinson_epsilon,
    plus_one_rows, partitions, ensemble,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:  # fmt: skip
    n = train.n_members
    metrics: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}

    per_member_recall = np.full(len(rows), np.nan)
    if len(heldout):
        relevant = heldout_matrix(heldout, n)[rows]
        has_heldout = np.diff(relevant.indptr) > 0
        eligible = has_heldout & (train.degrees[rows] > 0)
        recall = m.recall_at_k(ids, relevant, k=k)
        ndcg = m.ndcg_at_k(ids, relevant, k=k)
        per_member_recall = np.where(eligible, recall, np.nan)
        any_eligible = eligible.any()
        metrics[f"recall_at_{k}"] = (
            float(np.nanmean(per_member_recall)) if any_eligible else float("nan")
        )
        hits = np.where(eligible, recall * np.diff(relevant.indptr), 0.0)
        n_relevant = np.diff(relevant.indptr)[eligible].sum()
        metrics[f"recall_at_{k}/pooled"] = (
            float(hits.sum() / n_relevant) if n_relevant else float("nan")
        )
        metrics[f"ndcg_at_{k}"] = (
            float(np.nanmean(np.where(eligible, ndcg, np.nan))) if any_eligible else float("nan")
        )
        metrics["evaluated_members"] = float(eligible.sum())

    exposure = m.exposure_counts(ids, n_members=n)
    metrics["coverage"] = m.coverage(ids, n_members=n)
    metrics["bridge_rate"] = m.bridge_rate(rows, ids, communities)
    if ensemble is not None:
        r, j = np.nonzero(ids >= 0)
        together = co_membership(ensemble, rows[r], ids[r, j])
        metrics["bridge_rate/ensemble"] = float(1.0 - together.mean()) if len(r) else float("nan")
    if partitions:
        rates = [m.bridge_rate(rows, ids, labels) for labels in partitions.values()]
        metrics["bridge_rate/holdout_partition"] = float(np.median(rates))
    metrics["exposure_gini"] = m.gini(exposure)
    metrics["exposure_atkinson"] = m.atkinson(exposure, epsilon=atkinson_epsilon)
    metrics["max_inbound_share"] = m.max_inbound_share(ids)
    metrics["plus_one_balance"] = m.plus_one_balance(rows, ids, train.adjacency)
    if plus_one_rows is not None and plus_one_rows[rows].any():
        metrics["plus_one_balance_pledged"] = m.plus_one_balance(
            rows, ids, train.adjacency, mask=plus_one_rows[rows]
        )
    filled = (ids >= 0).sum(axis=1)
    metrics["mean_slate_size"] = float(filled.mean()) if len(filled) else 0.0
    tiers = m.network_size_tiers(train.degrees)
    metrics["network_size/exposure_ratio"] = m.exposure_ratio(
        exposure, tiers, min_group_size=min_group_size
    )

    for attr in train.sensitive.columns:
        groups = train.sensitive[attr].to_numpy(dtype=object)
        tables[f"equity/{attr}/exposure"] = m.group_exposure_table(
            exposure, groups, min_group_size=min_group_size
        )
        metrics[f"equity/{attr}/exposure_ratio"] = m.exposure_ratio(
            exposure, groups, min_group_size=min_group_size
        )
        if len(heldout):
            tables[f"equity/{attr}/recall"] = m.group_recall_table(
                per_member_recall, groups[rows], min_group_size=min_group_size
            )
            metrics[f"equity/{attr}/recall_ratio"] = m.recall_ratio(
                per_member_recall, groups[rows], min_group_size=min_group_size
            )
    return metrics, tables


def pool_recall(
    pool_ids: np.ndarray, source_bits: np.ndarray, relevant, *, sources: dict[str, int]
) -> dict[str, float]:
    """Share of held-out connections present in the candidate pool, merged and per source.

    ``relevant`` is the (R, n) held-out matrix of the pooled members; ``sources`` maps a source
    name to its bit in ``source_bits``. The ceiling of any re-ranking of that pool.
    """
    r, j = np.nonzero(pool_ids >= 0)
    total = int(relevant.sum())
    if total == 0:
        return {}
    hit = np.asarray(relevant[r, pool_ids[r, j]]).ravel() > 0
    out = {"pool_recall/merged": float(hit.sum() / total)}
    for name, bit in sources.items():
        out[f"pool_recall/{name}"] = float((hit & ((source_bits[r, j] & bit) > 0)).sum() / total)
    return out
