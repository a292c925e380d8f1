"""Re-ranking a scored pool into a slate: bridge communities, damp popularity, keep the +1 balance."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["BridgeBonusReranker", "top_k", "plus_one_select"]


def top_k(candidate_ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best of each row, best first; ties by candidate id; padding (-1) stays last.

    Parameters
    ----------
    candidate_ids : ndarray (R, P) int32, -1 padded
    scores : ndarray (R, P) float32

    Returns
    -------
    ids : ndarray (R, k) int32 padded with -1; scores : ndarray (R, k) float32 padded with -inf
    """
    scores = np.where(candidate_ids >= 0, scores, -np.inf).astype(np.float32)
    tie = np.where(candidate_ids >= 0, candidate_ids, np.iinfo(np.int32).max)
    order = np.lexsort((tie, -scores), axis=-1) if scores.size else np.zeros(scores.shape, dtype=np.int64)
    order = order[:, :k]
    ids = np.take_along_axis(candidate_ids, order, axis=1)
    out = np.take_along_axis(scores, order, axis=1)
    ids = np.where(np.isfinite(out), ids, -1).astype(np.int32)
    if ids.shape[1] < k:
        pad = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        out = np.pad(out, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, out.astype(np.float32)


def plus_one_select(
    candidate_ids: np.ndarray, scores: np.ndarray, outside: np.ndarray, required: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k slates where each ``required`` row holds at least as many outside as inside members.

    Outside means beyond two hops of the member (neither a connection nor a connection's
    connection). For a required row the best slate under the constraint is the top ``k - m``
    inside candidates and the top ``m`` outside ones, where ``m`` is the larger of the outside
    count in the plain top-k and ``ceil(k / 2)`` (as many as the pool has). Rows not required get
    the plain top-k. Where the pool has too few outside candidates the slate keeps all it has
    and the balance is not met: the best slate possible.
    """
    valid = candidate_ids >= 0
    scores = np.where(valid, scores, -np.inf)
    tie = np.where(valid, candidate_ids, np.iinfo(np.int32).max)
    order = np.lexsort((tie, -scores), axis=-1)
    ids_s = np.take_along_axis(candidate_ids, order, axis=1)
    sc_s = np.take_along_axis(scores, order, axis=1)
    out_s = np.take_along_axis(outside & valid, order, axis=1)
    in_s = np.take_along_axis(~outside & valid, order, axis=1)
    out_rank = np.cumsum(out_s, axis=1) - out_s  # rank among outside candidates
    in_rank = np.cumsum(in_s, axis=1) - in_s
    n_valid = valid.sum(axis=1)
    slate_size = np.minimum(n_valid, k)
    out_in_top = (out_s & (np.arange(order.shape[1]) < k)).sum(axis=1)
    n_out = out_s.sum(axis=1)
    want_out = np.where(required, np.maximum(out_in_top, np.minimum((slate_size + 1) // 2, n_out)), out_in_top)
    want_in = slate_size - want_out
    chosen = (out_s & (out_rank < want_out[:, None])) | (in_s & (in_rank < want_in[:, None]))
    # where the constraint did not change anything this equals the plain top-k
    chosen_scores = np.where(chosen, sc_s, -np.inf)
    return top_k(np.where(chosen, ids_s, -1), chosen_scores, k)


class BridgeBonusReranker(BaseEstimator):
    """Favour introductions across communities, damp popular members, keep the +1 balance.

    The re-ranking score is ``log(score) + bridge_weight · cross · (1 + small) − degree_penalty ·
    log(1 + degree(other))``, where ``cross`` is 1 when the two members sit in different
    communities and ``small`` is 1 when the member's own network is small (fewer than
    ``small_network`` connections) or lies entirely in one community. The returned scores are
    ``exp`` of that, so they sort the slate.

    Parameters
    ----------
    bridge_weight : float
        Log-bonus of a cross-community introduction (0.5 ≈ ×1.65).
    degree_penalty : float
        Log-penalty per unit of log degree of the proposed member.
    plus_one : {"off", "pledged", "all"}
        Which slates must hold at least as many outside-network introductions as inside ones.
    small_network : int
        Members with fewer connections than this get the doubled bridge bonus.

    Examples
    --------
    >>> import numpy as np
    >>> rr = BridgeBonusReranker(bridge_weight=1.0, degree_penalty=0.0).fit(
    ...     communities=np.array([0, 0, 1]), degrees=np.array([5, 5, 5]),
    ...     member_spans_one_community=np.array([False] * 3), pledged=np.zeros(3, bool))
    >>> ids, _ = rr.rerank(np.array([0]), np.array([[1, 2]], np.int32), np.array([[0.5, 0.4]], np.float32), k=2)
    >>> ids.tolist()
    [[2, 1]]
    """

    def __init__(
        self,
        *,
        bridge_weight: float = 0.5,
        degree_penalty: float = 0.05,
        plus_one: Literal["off", "pledged", "all"] = "pledged",
        small_network: int = 5,
    ):
        self.bridge_weight = bridge_weight
        self.degree_penalty = degree_penalty
        self.plus_one = plus_one
        self.small_network = small_network

    def fit(
        self,
        *,
        communities: np.ndarray,
        degrees: np.ndarray,
        member_spans_one_community: np.ndarray,
        pledged: np.ndarray,
    ) -> "BridgeBonusReranker":
        if self.plus_one not in ("off", "pledged", "all"):
            raise ValueError(f"plus_one must be 'off', 'pledged' or 'all', got {self.plus_one!r}")
        if self.bridge_weight < 0 or self.degree_penalty < 0:
            raise ValueError("bridge_weight and degree_penalty must be non-negative")
        self.communities_ = np.asarray(communities)
        self.log_degrees_ = np.log1p(np.asarray(degrees, dtype=np.float32))
        self.small_ = (np.asarray(degrees) < self.small_network) | np.asarray(member_spans_one_community)
        self.pledged_ = np.asarray(pledged, dtype=bool)
        return self

    def adjusted_scores(self, member_rows: np.ndarray, candidate_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        valid = candidate_ids >= 0
        safe = np.where(valid, candidate_ids, 0)
        cross = self.communities_[safe] != self.communities_[member_rows][:, None]
        boost = 1.0 + self.small_[member_rows].astype(np.float32)
        with np.errstate(divide="ignore"):
            adjusted = (
                np.log(np.maximum(scores, 1e-12))
                + self.bridge_weight * cross * boost[:, None]
                - self.degree_penalty * self.log_degrees_[safe]
            )
        return np.where(valid, np.exp(adjusted), -np.inf).astype(np.float32)

    def required_rows(self, member_rows: np.ndarray) -> np.ndarray:
        if self.plus_one == "all":
            return np.ones(len(member_rows), dtype=bool)
        if self.plus_one == "pledged":
            return self.pledged_[member_rows]
        return np.zeros(len(member_rows), dtype=bool)

    def rerank(
        self,
        member_rows: np.ndarray,
        candidate_ids: np.ndarray,
        scores: np.ndarray,
        k: int,
        *,
        outside: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slates of k from pools ``candidate_ids`` (R, P) with ``scores`` (R, P).

        ``outside`` (R, P) bool marks candidates beyond two hops; without it the +1 balance
        is not applied. Returns ``ids`` (R, k) int32 and ``scores`` (R, k) float32, padded.
        """
        member_rows = np.asarray(member_rows, dtype=np.int64)
        adjusted = self.adjusted_scores(member_rows, candidate_ids, scores)
        if outside is None or self.plus_one == "off":
            return top_k(candidate_ids, adjusted, k)
        return plus_one_select(candidate_ids, adjusted, outside, self.required_rows(member_rows), k)
