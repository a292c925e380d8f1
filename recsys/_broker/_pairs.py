"""Lists of pairs under recipient capacity: the rounds that turn every broker's candidates into
lists in which no member is proposed more often than their capacity."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["assign_pairs"]


def assign_pairs(
    cand_pairs: np.ndarray,
    cand_scores: np.ndarray,
    k_rows: np.ndarray,
    capacity: np.ndarray,
    *,
    shared: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Lists of pairs in which no member appears more often than their capacity.

    Rounds of a vectorised deferred-acceptance pass: every broker whose list is not full
    proposes their best remaining pair whose two members both have places left; each member
    keeps the best-scored proposals of the round up to their places left and refuses the rest;
    a pair is made when both its members keep it, and a refused pair is proposed again in the
    next round if both its members still have places. Earlier rounds are earlier list
    positions, so no broker's best introduction waits behind another broker's tenth. Every
    round makes at least one pair (the round's best proposal is kept at both ends), and at the
    end every candidate left out of a list that is not full has a member at capacity.

    Parameters
    ----------
    cand_pairs : ndarray (R, M, 2) int32, each broker's candidates best first, -1 padded
    cand_scores : ndarray (R, M) float32
    k_rows : ndarray (R,) int, the list length each broker wants
    capacity : ndarray (n,) int, places per member
    shared : bool
        Capacity shared by all brokers (``True``) or counted per broker.

    Returns
    -------
    pairs : ndarray (R, K, 2) int32, -1 padded (K = max k_rows); scores : ndarray (R, K) float32

    Examples
    --------
    >>> cand = np.array([[[0, 1], [0, 2], [1, 2]], [[0, 3], [2, 3], [-1, -1]]], np.int32)
    >>> sc = np.array([[0.9, 0.8, 0.7], [0.95, 0.5, -np.inf]], np.float32)
    >>> pairs, _ = assign_pairs(cand, sc, np.array([2, 2]), np.array([1, 2, 2, 2]))
    >>> pairs.tolist()
    [[[1, 2], [-1, -1]], [[0, 3], [2, 3]]]
    """
    R, M = cand_scores.shape
    k_rows = np.asarray(k_rows, dtype=np.int64)
    K = max(int(k_rows.max(initial=0)), 1)
    out_pairs = np.full((R, K, 2), -1, dtype=np.int32)
    out_scores = np.full((R, K), -np.inf, dtype=np.float32)
    if R == 0 or M == 0:
        return out_pairs, out_scores
    valid = cand_pairs[:, :, 0] >= 0
    # places are counted per member (shared) or per (broker, member): compact keys for both
    n = len(capacity)
    ends = cand_pairs.astype(np.int64)
    if not shared:
        ends = ends + (np.arange(R, dtype=np.int64) * n)[:, None, None]
    ends = np.where(valid[:, :, None], ends, -1)
    codes, uniques = pd.factorize(ends.ravel())
    codes = codes.reshape(R, M, 2)
    member_of = np.where(uniques >= 0, uniques % n, 0)
    remaining = np.where(uniques >= 0, np.asarray(capacity, dtype=np.int64)[member_of], 0)
    filled = np.zeros(R, dtype=np.int64)
    ptr = np.zeros(R, dtype=np.int64)
    columns = np.arange(M)
    while True:
        active = np.flatnonzero((filled < k_rows) & (ptr < M))
        if len(active) == 0:
            break
        ca, cb = codes[active, :, 0], codes[active, :, 1]
        open_ = (
            valid[active]
            & (columns >= ptr[active, None])
            & (remaining[ca] > 0)
            & (remaining[cb] > 0)
        )
        nxt = open_.argmax(axis=1)
        has = open_[np.arange(len(active)), nxt]
        ptr[active[~has]] = M  # nothing left for these brokers
        r, j = active[has], nxt[has]
        if len(r) == 0:
            break
        ptr[r] = (
            j  # a refused pair is proposed again next round unless a member of it is full by then
        )
        sc = cand_scores[r, j]
        end_codes = np.concatenate([codes[r, j, 0], codes[r, j, 1]])
        proposal = np.concatenate([np.arange(len(r)), np.arange(len(r))])
        end_sc = np.concatenate([sc, sc])
        # at each member: proposals best-scored first (ties: earlier broker), keep as many as
        # places left
        order = np.lexsort((proposal, -end_sc, end_codes))
        sorted_codes = end_codes[order]
        first = np.searchsorted(sorted_codes, sorted_codes, side="left")
        kept = (np.arange(len(order)) - first) < remaining[sorted_codes]
        accept = np.bincount(proposal[order][kept], minlength=len(r)) == 2
        ra, ja = r[accept], j[accept]
        ptr[ra] = ja + 1
        out_pairs[ra, filled[ra]] = cand_pairs[ra, ja]
        out_scores[ra, filled[ra]] = cand_scores[ra, ja]
        filled[ra] += 1
        np.subtract.at(remaining, codes[ra, ja, 0], 1)
        np.subtract.at(remaining, codes[ra, ja, 1], 1)
    return out_pairs, out_scores
