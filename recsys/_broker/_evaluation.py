"""Broker suggestions measured: held-out connections, past introductions, and the
common-neighbour baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys._broker._features import Chunk, chunks
from recsys._broker._pairs import assign_pairs
from recsys._broker._ranker import BrokerRanker, count_pairs

__all__ = ["common_neighbour_broker_pairs", "evaluate_broker"]


def common_neighbour_broker_pairs(
    adjacency: sp.csr_matrix,
    broker_rows,
    k: int,
    *,
    eligible: np.ndarray | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: each broker's contact pairs ranked by their number of common neighbours.

    Pairs already connected are left out; ties (most pairs share only the broker) are broken at
    random (seeded), so the baseline is not favoured by the order of member rows.

    Returns ``pairs`` (R, k, 2) int32 and ``scores`` (R, k) float32 (common neighbours), padded.
    """
    rows = np.atleast_1d(np.asarray(broker_rows, dtype=np.int64))
    n = adjacency.shape[0]
    eligible = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    rng = np.random.default_rng(random_state)
    out_pairs = np.full((len(rows), k, 2), -1, dtype=np.int32)
    out_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    indptr = adjacency.indptr
    deg = (indptr[rows + 1] - indptr[rows]).astype(np.int64)
    for chunk in chunks(deg, 1_000_000):
        c = Chunk(adjacency, rows[chunk])
        c.keep(eligible[c.contacts[c.si]] & eligible[c.contacts[c.sj]] & ~c.connected())
        s = c.keyed_rows(adjacency)
        common = c.gather(s @ s.T.tocsr())
        si, sj, local, contacts = c.si, c.sj, c.local, c.contacts
        tie = rng.random(len(si))
        order = np.lexsort((tie, -common, local))
        local_s = local[order]
        rank = np.arange(len(order)) - np.searchsorted(local_s, local_s, side="left")
        fit = rank < k
        o = order[fit]
        out_pairs[chunk[local_s[fit]], rank[fit], 0] = contacts[si[o]]
        out_pairs[chunk[local_s[fit]], rank[fit], 1] = contacts[sj[o]]
        out_scores[chunk[local_s[fit]], rank[fit]] = common[o]
    return out_pairs, out_scores


def evaluate_broker(
    model,
    heldout: np.ndarray,
    *,
    k: int = 10,
    ranker: BrokerRanker | None = None,
    broker_rows: np.ndarray | None = None,
    introductions: pd.DataFrame | None = None,
    random_state: int = 0,
) -> dict[str, float]:
    """Broker suggestions measured against held-out connections (and past introductions).

    A held-out connection (A, B) whose two members share a contact C in the training graph is a
    hit for every such broker C that lists (A, B) in their top ``k``. ``recall_at_K`` is averaged
    over the brokers who have at least one such held-out pair (denominator: all of them, as in
    :func:`recsys.metrics.recall_at_k`). Each broker's list is ranked on its own
    (``shared_capacity=False``: what a broker asking alone sees); ``shared_capacity/recall_at_K``
    is the same with capacity shared by all brokers at once.

    The baseline ranks each broker's contact pairs by their number of common neighbours
    (:func:`common_neighbour_broker_pairs`), under the same capacity rule. ``acceptance_only``
    is the broker ranking with no bridge or small-network bonus; ``uncapped`` (ours and the
    baseline's) the plain top ``k`` with no capacity at all. ``recall_at_K_ranked`` averages
    over the brokers with more than ``k`` pairs of contacts only, where the ranking (not the
    list's length) decides.

    With an ``introductions`` table (default: ``model.network_.introductions``), its brokered
    rows (``broker >= 0``) label (broker, A, B): accepted ones are positives, declined ones
    negatives, and ``introductions/precision_at_K`` is the share of accepted among the labelled
    pairs in the brokers' top ``k``.

    Returns
    -------
    dict of flat metric name → float, every name prefixed ``broker/``.
    """
    ranker = ranker if ranker is not None else BrokerRanker().fit(model)
    adjacency = model.features_.adjacency
    degrees = np.diff(adjacency.indptr)
    brokers = (
        np.flatnonzero(degrees >= 2).astype(np.int64)
        if broker_rows is None
        else np.asarray(broker_rows, np.int64)
    )
    communities = model.communities_
    small = degrees < ranker.small_network

    # the pairs are scored once; the weightings and capacity rules only re-rank them
    main, plain = ranker._candidate_lists(
        brokers,
        ranker._depth(k),
        "skip",
        2 * k,
        [(ranker.bridge_weight, ranker.small_network_weight), (0.0, 0.0)],
    )
    baseline = common_neighbour_broker_pairs(
        adjacency, brokers, ranker._depth(k), eligible=ranker.eligible_, random_state=random_state
    )
    k_rows = np.full(len(brokers), k)
    lists = {
        "": assign_pairs(*main, k_rows, ranker.capacity_, shared=False)[0],
        "acceptance_only/": assign_pairs(*plain, k_rows, ranker.capacity_, shared=False)[0],
        "baseline/common_neighbours/": assign_pairs(
            *baseline, k_rows, ranker.capacity_, shared=False
        )[0],
        "uncapped/": main[0][:, :k],
        "acceptance_only/uncapped/": plain[0][:, :k],
        "baseline/common_neighbours/uncapped/": baseline[0][:, :k],
        "shared_capacity/": assign_pairs(*main, k_rows, ranker.capacity_, shared=True)[0],
    }

    relevant = _brokered_heldout(adjacency, heldout)  # (T, 3): broker, a, b
    relevant = relevant[np.isin(relevant[:, 0], brokers)]
    broker_pos = pd.Index(brokers)
    per_broker = np.bincount(broker_pos.get_indexer(relevant[:, 0]), minlength=len(brokers))
    with_heldout = per_broker > 0
    # brokers with more than k pairs of contacts: where the ranking, not the list length, decides
    ranked = with_heldout & (degrees[brokers].astype(np.int64) * (degrees[brokers] - 1) // 2 > k)

    metrics: dict[str, float] = {
        "broker/evaluated_brokers": float(len(brokers)),
        "broker/brokers_with_heldout": float(with_heldout.sum()),
        "broker/ranked_brokers_with_heldout": float(ranked.sum()),
        "broker/candidate_pairs": float(count_pairs(degrees[brokers])),
    }
    labelled = _brokered_introductions(
        model.network_.introductions if introductions is None else introductions
    )
    for prefix, pairs in lists.items():
        r, j = np.nonzero(pairs[:, :, 0] >= 0)
        triples = np.column_stack([brokers[r], pairs[r, j, 0], pairs[r, j, 1]]).astype(np.int64)
        hit = _isin_rows(triples, relevant)
        hits = np.bincount(r[hit], minlength=len(brokers))
        recall = np.divide(hits, per_broker, out=np.zeros(len(brokers)), where=with_heldout)
        metrics[f"broker/{prefix}recall_at_{k}"] = (
            float(recall[with_heldout].mean()) if with_heldout.any() else float("nan")
        )
        metrics[f"broker/{prefix}recall_at_{k}_ranked"] = (
            float(recall[ranked].mean()) if ranked.any() else float("nan")
        )
        a, b = triples[:, 1], triples[:, 2]
        metrics[f"broker/{prefix}bridge_rate"] = (
            float(np.mean(communities[a] != communities[b])) if len(a) else float("nan")
        )
        metrics[f"broker/{prefix}small_network_share"] = (
            float(np.mean(small[a] | small[b])) if len(a) else float("nan")
        )
        metrics[f"broker/{prefix}mean_list_size"] = float(len(r) / max(len(brokers), 1))
        if labelled is not None and len(labelled):
            found, label = _lookup_rows(triples, labelled[:, :3], labelled[:, 3])
            metrics[f"broker/{prefix}introductions/labelled_in_top_{k}"] = float(found.sum())
            metrics[f"broker/{prefix}introductions/precision_at_{k}"] = (
                float(label[found].mean()) if found.any() else float("nan")
            )
    return metrics


def _brokered_heldout(adjacency: sp.csr_matrix, heldout: np.ndarray) -> np.ndarray:
    """(T, 3) int64 rows (broker, a, b), a < b: every common training contact of every held-out
    pair.
    """
    heldout = np.asarray(heldout, dtype=np.int64).reshape(-1, 2)
    if len(heldout) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    a, b = heldout.min(axis=1), heldout.max(axis=1)
    common = adjacency[a].multiply(adjacency[b]).tocsr()
    rows = np.repeat(np.arange(len(a)), np.diff(common.indptr))
    return np.column_stack([common.indices.astype(np.int64), a[rows], b[rows]])


def _brokered_introductions(introductions: pd.DataFrame | None) -> np.ndarray | None:
    """(L, 4) int64 rows (broker, a, b, accepted) of the brokered introductions, a < b; the last
    label wins.
    """
    if introductions is None:
        return None
    frame = introductions[introductions["broker"] >= 0]
    a = frame["member_a"].to_numpy(np.int64)
    b = frame["member_b"].to_numpy(np.int64)
    out = np.column_stack(
        [
            frame["broker"].to_numpy(np.int64),
            np.minimum(a, b),
            np.maximum(a, b),
            frame["accepted"].to_numpy(np.int64),
        ]
    )
    if (
        "created_at" in frame.columns
    ):  # a pair introduced twice by one broker: the latest outcome counts
        out = out[np.argsort(frame["created_at"].fillna(-np.inf).to_numpy(), kind="stable")]
    _, last = np.unique(out[::-1, :3], axis=0, return_index=True)
    return out[::-1][last]


def _isin_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(len(x),) bool: row x[i] (int64, 3 columns) occurs among the rows of y."""
    found, _ = _lookup_rows(x, y, np.zeros(len(y), dtype=np.int64))
    return found


def _lookup_rows(
    x: np.ndarray, y: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of x found among the (unique) rows of y, and the value of the matching y row (0 if
    none).
    """
    if len(x) == 0 or len(y) == 0:
        return np.zeros(len(x), dtype=bool), np.zeros(len(x), dtype=values.dtype)
    both = np.concatenate([x, y])
    codes = _row_codes(both)
    cx, cy = codes[: len(x)], codes[len(x) :]
    lookup = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    lookup[cy] = np.arange(len(y))
    pos = lookup[cx]
    found = pos >= 0
    return found, np.where(found, values[np.maximum(pos, 0)], 0)


def _row_codes(rows: np.ndarray) -> np.ndarray:
    """Equal rows → equal int64 codes, via pandas' hash factorisation of the columns in turn."""
    codes = np.zeros(len(rows), dtype=np.int64)
    for column in rows.T:  # three columns
        col_codes, col_uniques = pd.factorize(column)
        codes, _ = pd.factorize(codes * len(col_uniques) + col_codes)
    return codes.astype(np.int64)
