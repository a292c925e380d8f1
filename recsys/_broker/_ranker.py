"""The broker ranker: which pairs of my contacts should I introduce to each other?"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from recsys import _candidates
from recsys._broker._features import Chunk, block_features, chunks
from recsys._broker._pairs import assign_pairs
from recsys._candidates import hop_weights
from recsys._explain import summarize_reasons
from recsys._features import FEATURE_NAMES
from recsys._fitted import require_fitted

__all__ = [
    "BrokerRanker",
    "TooFewContactsError",
    "assign_pairs",
    "fill_pledges",
    "rank_introductions_to_make",
]

logger = logging.getLogger(__name__)


class TooFewContactsError(ValueError):
    """A broker needs at least two contacts to introduce to each other.

    Attributes
    ----------
    broker_row : int
    n_contacts : int
    """

    def __init__(self, broker_row: int, n_contacts: int, member_id: str | None = None):
        self.broker_row = int(broker_row)
        self.n_contacts = int(n_contacts)
        who = f"member {member_id!r}" if member_id is not None else f"member row {broker_row}"
        plural = "contact" if n_contacts == 1 else "contacts"
        super().__init__(
            f"{who} has {n_contacts} {plural}; introductions to make need at least two "
            "contacts to introduce to each other"
        )


class BrokerRanker(BaseEstimator):
    """Introductions a member (the broker) could make between their own contacts.

    ``fit(model)`` takes a fitted :class:`recsys.IntroductionRecommender` (its training graph,
    pair features, acceptance model and communities); ``rank(broker_rows, k)`` returns, for a
    batch of brokers, the best ``k`` pairs of each broker's contacts who are not connected to
    each other, best first.

    Parameters
    ----------
    bridge_weight : float
        Log-bonus of a pair whose two members sit in different communities (0.5 ≈ ×1.65).
    small_network_weight : float
        Log-bonus of a pair in which one member has fewer than ``small_network`` connections.
    small_network : int
        A network smaller than this many connections is "small" (in the bonus and the reasons).
    default_capacity : int
        Introductions a member may be proposed for (per batch) when the member column
        ``capacity`` is absent or empty for them. It also keeps one broker's list from
        introducing the same contact to everyone.
    n_candidates : int or None
        Best pairs per broker kept before capacity is applied (``None``: ``20·k``, at least 200,
        at most 2,000). A broker whose candidates all hit capacity gets a shorter list.
    max_chunk_pairs : int
        Brokers are scored in chunks of about this many candidate pairs (memory bound; a broker
        with more pairs than this is scored alone).

    Attributes
    ----------
    model_ : IntroductionRecommender
    capacity_ : ndarray (n,) int64
        Introductions each member may be proposed for in one batch.
    eligible_ : ndarray (n,) bool
        Open to introductions and with capacity left.
    degrees_ : ndarray (n,) int32
        Connections in the training graph.

    Examples
    --------
    >>> from recsys import IntroductionRecommender, synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> model = IntroductionRecommender(pool_size=30, als_iterations=2).fit(net)
    >>> ranker = BrokerRanker().fit(model)
    >>> brokers = np.flatnonzero(ranker.degrees_ >= 3)[:4]
    >>> pairs, scores = ranker.rank(brokers, k=5)
    >>> pairs.shape, pairs.dtype.name, scores.shape, scores.dtype.name
    ((4, 5, 2), 'int32', (4, 5), 'float32')
    """

    def __init__(
        self,
        *,
        bridge_weight: float = 0.5,
        small_network_weight: float = 0.5,
        small_network: int = 5,
        default_capacity: int = 3,
        n_candidates: int | None = None,
        max_chunk_pairs: int = 1_000_000,
    ):
        self.bridge_weight = bridge_weight
        self.small_network_weight = small_network_weight
        self.small_network = small_network
        self.default_capacity = default_capacity
        self.n_candidates = n_candidates
        self.max_chunk_pairs = max_chunk_pairs

    # ------------------------------------------------------------------ fit
    def fit(self, model) -> BrokerRanker:
        """Take the fitted ``model``'s graph, features, acceptance model and member columns."""
        require_fitted(model, "state_")
        if self.bridge_weight < 0 or self.small_network_weight < 0:
            raise ValueError("bridge_weight and small_network_weight must be non-negative")
        if self.default_capacity < 0:
            raise ValueError(f"default_capacity must be at least 0, got {self.default_capacity}")
        if self.n_candidates is not None and self.n_candidates < 1:
            raise ValueError(f"n_candidates must be at least 1, got {self.n_candidates}")
        if self.max_chunk_pairs < 1:
            raise ValueError("max_chunk_pairs must be at least 1")
        net = model.network_
        feats = model.features_
        self.model_ = model
        self.n_members_ = int(net.n_members)
        self.degrees_ = np.diff(feats.adjacency.indptr).astype(np.int32)
        self.small_ = self.degrees_ < self.small_network
        self.capacity_ = _capacity(
            net.numeric_attribute("capacity"), self.n_members_, self.default_capacity
        )
        self.eligible_ = net.bool_attribute("open_to_intros", default=True) & (self.capacity_ > 0)
        self._aa_weight = hop_weights(self.degrees_)
        self._ra_weight = hop_weights(self.degrees_, weighting="resource_allocation")
        self._l3_weight = 1.0 / np.sqrt(np.maximum(self.degrees_, 1).astype(np.float64))
        self._has_interests = np.diff(feats.member_interests.indptr) > 0
        # walks of length three skip middle members with more connections than the candidate
        # sources' bound (recsys._candidates.MAX_MIDDLE_DEGREE), as PairFeatures does
        limit = getattr(_candidates, "MAX_MIDDLE_DEGREE", None)
        self._middle = (
            np.ones(self.n_members_, dtype=bool) if limit is None else self.degrees_ <= limit
        )
        self._upper = (
            None  # the upper triangle of the edges between such members, built on first use
        )
        self._interest_df = None
        return self

    def _check_fitted(self) -> None:
        require_fitted(self, "model_")

    def _check_rows(self, broker_rows) -> np.ndarray:
        rows = np.atleast_1d(np.asarray(broker_rows))
        if rows.ndim != 1 or (len(rows) and not np.issubdtype(rows.dtype, np.integer)):
            raise TypeError("broker_rows must be an integer row index or a 1-d array of them")
        rows = rows.astype(np.int64)
        bad = (rows < 0) | (rows >= self.n_members_)
        if bad.any():
            raise IndexError(f"broker row {int(rows[bad][0])} is outside 0..{self.n_members_ - 1}")
        return rows

    # ------------------------------------------------------------------ candidates
    def candidate_pairs(
        self,
        broker_rows,
        *,
        n_candidates: int,
        on_too_few: Literal["raise", "skip"] = "raise",
        occurrence_cap: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each broker's best ``n_candidates`` pairs by broker score, before capacity.

        ``occurrence_cap`` (when given) keeps a member in at most ``capacity + occurrence_cap``
        of one broker's candidates. With ``occurrence_cap = 2k`` no pair left out could have made
        a list of ``k`` on its own: at most ``2k`` members are full when a broker's list is.

        Returns
        -------
        pairs : ndarray (R, n_candidates, 2) int32, padded with -1; each pair ``(a, b)`` with ``a <
        b``
        scores : ndarray (R, n_candidates) float32, padded with -inf, best first
        """
        weights = [(self.bridge_weight, self.small_network_weight)]
        return self._candidate_lists(
            broker_rows, n_candidates, on_too_few, occurrence_cap, weights
        )[0]

    def _candidate_lists(
        self,
        broker_rows,
        n_candidates: int,
        on_too_few: str,
        occurrence_cap: int | None,
        weights: list[tuple[float, float]],
    ):
        """:meth:`candidate_pairs` for several (bridge, small-network) weightings, scoring the
        pairs once.
        """
        self._check_fitted()
        rows = self._check_rows(broker_rows)
        deg = self.degrees_[rows]
        if on_too_few == "raise" and (deg < 2).any():
            i = int(np.flatnonzero(deg < 2)[0])
            raise TooFewContactsError(
                int(rows[i]), int(deg[i]), str(self.model_.network_.member_ids[rows[i]])
            )
        R, M = len(rows), int(n_candidates)
        outs = [
            (np.full((R, M, 2), -1, dtype=np.int32), np.full((R, M), -np.inf, dtype=np.float32))
            for _ in weights
        ]
        communities = self.model_.communities_
        for chunk in chunks(deg, self.max_chunk_pairs):
            a_all, b_all, local_all, feats = self._pairs_and_features(rows[chunk])
            if len(a_all) == 0:
                continue
            log_p = np.log(np.maximum(self.acceptance_scores(feats), 1e-12))
            cross = communities[a_all] != communities[b_all]
            small = self.small_[a_all] | self.small_[b_all]
            for (bridge_weight, small_weight), (out_pairs, out_scores) in zip(weights, outs):
                scores = np.exp(log_p + bridge_weight * cross + small_weight * small).astype(
                    np.float32
                )
                keep = _top_per_group(
                    local_all,
                    scores,
                    a_all,
                    b_all,
                    M * 4 if occurrence_cap is not None else M,
                    single=len(chunk) == 1,
                )
                a, b, local, scores = a_all[keep], b_all[keep], local_all[keep], scores[keep]
                if occurrence_cap is not None:
                    ok = _occurrence_ok(local, a, b, self.capacity_ + occurrence_cap)
                    a, b, local, scores = a[ok], b[ok], local[ok], scores[ok]
                rank = _rank_within(local)
                fit = rank < M
                r_out = chunk[local[fit]]
                out_pairs[r_out, rank[fit], 0] = a[fit]
                out_pairs[r_out, rank[fit], 1] = b[fit]
                out_scores[r_out, rank[fit]] = scores[fit]
        return outs

    def _pairs_and_features(self, brokers: np.ndarray):
        """Candidate pairs of a chunk of brokers and their pair features.

        Returns ``a``, ``b`` (P,) int64 member rows with ``a < b``, ``local`` (P,) int64 index of
        the broker within ``brokers``, and ``features`` (P, F) float32.
        """
        feats = self.model_.features_
        adjacency = feats.adjacency
        if (
            not adjacency.has_sorted_indices
        ):  # contacts in member order make every pair (a, b) with a < b
            adjacency = adjacency.sorted_indices()
        if self._upper is None:
            upper = sp.triu(adjacency, k=1).tocoo()
            keep = self._middle[upper.row] & self._middle[upper.col]
            self._upper = sp.csr_matrix(
                (upper.data[keep], (upper.row[keep], upper.col[keep])), shape=adjacency.shape
            )
        chunk = Chunk(adjacency, brokers, upper=self._upper, middle=self._middle)
        # open to introductions with capacity left, and not connected yet
        keep = (
            self.eligible_[chunk.contacts[chunk.si]]
            & self.eligible_[chunk.contacts[chunk.sj]]
            & ~chunk.connected()
        )
        chunk.keep(keep)
        a, b, local = chunk.contacts[chunk.si], chunk.contacts[chunk.sj], chunk.local
        if len(a) == 0:
            return a, b, local, np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
        weights = dict(
            aa_weight=self._aa_weight, ra_weight=self._ra_weight, l3_weight=self._l3_weight
        )
        return a, b, local, block_features(chunk, feats, **weights)

    def acceptance_scores(self, features: np.ndarray) -> np.ndarray:
        """The model's reciprocal acceptance score of pair features, (P,) float32."""
        model = self.model_
        return model.acceptance_.reciprocal_score(features, how=model.reciprocal)

    # ------------------------------------------------------------------ rank
    def _depth(self, k: int) -> int:
        return (
            int(self.n_candidates)
            if self.n_candidates is not None
            else int(min(max(20 * k, 200), 2000))
        )

    def rank(
        self,
        broker_rows,
        k: int = 10,
        *,
        shared_capacity: bool = True,
        on_too_few: Literal["raise", "skip"] = "raise",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Introductions to make, for a batch of brokers.

        Parameters
        ----------
        broker_rows : int or array-like of int, shape (R,)
        k : int
            Pairs per broker.
        shared_capacity : bool
            ``True``: no member is proposed more than their capacity across the whole batch
            (what a batch job sending the lists needs). ``False``: each broker's list respects
            capacity on its own (what one broker sees when asking alone).
        on_too_few : {"raise", "skip"}
            A broker with fewer than two contacts raises :class:`TooFewContactsError`, or gets an
            empty (padded) list.

        Returns
        -------
        pairs : ndarray (R, k, 2) int32, padded with -1; member rows ``(a, b)``, ``a < b``
        scores : ndarray (R, k) float32, padded with -inf, best first
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a whole number of at least 1, got {k!r}")
        self._check_fitted()
        rows = self._check_rows(broker_rows)
        if shared_capacity and len(np.unique(rows)) != len(rows):
            raise ValueError(
                "broker_rows repeats a broker; with shared capacity each broker is ranked once"
            )
        cand_pairs, cand_scores = self.candidate_pairs(
            rows, n_candidates=self._depth(k), on_too_few=on_too_few, occurrence_cap=2 * k
        )
        return assign_pairs(
            cand_pairs, cand_scores, np.full(len(rows), k), self.capacity_, shared=shared_capacity
        )

    def fill_pledges(self, *, k_default: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fill every broker's pledge across the network without exceeding any recipient's
        capacity.

        A member's pledge is their ``pledge_per_month`` column (introductions they mean to make);
        an empty cell, or every member when the column is absent, pledges ``k_default``. Every
        broker with a pledge and at least two contacts proposes, in rounds, their next best pair;
        recipients over capacity keep the best-scored proposals of the round and refuse the rest
        (see :func:`assign_pairs`).

        Returns
        -------
        broker_rows : ndarray (R,) int64, the brokers with a pledge and at least two contacts
        pairs : ndarray (R, K, 2) int32, padded with -1 (K the largest pledge)
        scores : ndarray (R, K) float32, padded with -inf
        """
        self._check_fitted()
        if k_default < 0:
            raise ValueError(f"k_default must be at least 0, got {k_default}")
        column = self.model_.network_.numeric_attribute("pledge_per_month")
        pledge = np.full(self.n_members_, k_default, dtype=np.int64)
        if column is not None:
            given = np.isfinite(column)
            pledge[given] = np.maximum(np.floor(column[given]), 0).astype(np.int64)
        brokers = np.flatnonzero((pledge > 0) & (self.degrees_ >= 2)).astype(np.int64)
        k_max = int(pledge[brokers].max(initial=0))
        if len(brokers) == 0:
            return (
                brokers,
                np.full((0, max(k_max, 1), 2), -1, np.int32),
                np.full((0, max(k_max, 1)), -np.inf, np.float32),
            )
        cand_pairs, cand_scores = self.candidate_pairs(
            brokers, n_candidates=self._depth(k_max), on_too_few="skip", occurrence_cap=2 * k_max
        )
        pairs, scores = assign_pairs(
            cand_pairs, cand_scores, pledge[brokers], self.capacity_, shared=True
        )
        logger.info(
            "pledges: %d brokers, %d of %d pledged introductions filled",
            len(brokers),
            int((pairs[:, :, 0] >= 0).sum()),
            int(pledge[brokers].sum()),
        )
        return brokers, pairs, scores

    # ------------------------------------------------------------------ explain
    def explain(self, broker_row: int, pairs, *, max_interests: int = 3) -> list[dict]:
        """Reasons the broker can give for introducing each pair ``(a, b)``.

        Each dict holds ``shared_interests`` (the rarest few shared interests, by name),
        ``n_shared_interests``, ``n_other_mutual_contacts`` (mutual contacts of A and B besides
        the broker), ``bridges_communities``, ``small_networks`` (``{"member_id",
        "n_connections"}`` for each side with fewer than ``small_network`` connections) and a
        one-line ``summary``. Nothing sensitive is read.
        """
        self._check_fitted()
        net = self.model_.network_
        adjacency = self.model_.features_.adjacency
        interests = net.member_interests
        if self._interest_df is None:
            self._interest_df = np.bincount(interests.indices, minlength=interests.shape[1])
        communities = self.model_.communities_
        broker = int(broker_row)
        out = []
        for a, b in np.asarray(pairs, dtype=np.int64).reshape(
            -1, 2
        ):  # one list is at most a few dozen pairs
            shared = np.intersect1d(interests[a].indices, interests[b].indices, assume_unique=True)
            shared = shared[
                np.argsort(self._interest_df[shared], kind="stable")
            ]  # the rarest say the most
            mutual = np.intersect1d(adjacency[a].indices, adjacency[b].indices, assume_unique=True)
            others = int(len(mutual) - np.isin(broker, mutual))
            small = [
                {"member_id": str(net.member_ids[x]), "n_connections": int(self.degrees_[x])}
                for x in (a, b)
                if self.small_[x]
            ]
            names = [str(x) for x in net.interest_names[shared[:max_interests]]]
            reasons = {
                "shared_interests": names,
                "n_shared_interests": int(len(shared)),
                "n_other_mutual_contacts": others,
                "bridges_communities": bool(communities[a] != communities[b]),
                "small_networks": small,
            }
            reasons["summary"] = summarize_reasons(reasons)
            out.append(reasons)
        return out


# ---------------------------------------------------------------------------------- functions
def rank_introductions_to_make(
    model,
    broker_rows,
    k: int = 10,
    *,
    shared_capacity: bool = True,
    on_too_few: Literal["raise", "skip"] = "raise",
    bridge_weight: float = 0.5,
    small_network_weight: float = 0.5,
    small_network: int = 5,
    default_capacity: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Which of their contacts should each broker introduce to each other?
    (:meth:`BrokerRanker.rank`)

    Parameters
    ----------
    model : IntroductionRecommender, fitted
    broker_rows : int or array-like of int, shape (R,)
    k : int
    shared_capacity, on_too_few : see :meth:`BrokerRanker.rank`
    bridge_weight, small_network_weight, small_network, default_capacity : see
    :class:`BrokerRanker`

    Returns
    -------
    pairs : ndarray (R, k, 2) int32, padded with -1
    scores : ndarray (R, k) float32, padded with -inf, best first

    Examples
    --------
    >>> from recsys import IntroductionRecommender, synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> model = IntroductionRecommender(pool_size=30, als_iterations=2).fit(net)
    >>> pairs, scores = rank_introductions_to_make(model, [5, 6], k=3)
    >>> pairs.shape, scores.shape
    ((2, 3, 2), (2, 3))
    """
    ranker = BrokerRanker(
        bridge_weight=bridge_weight,
        small_network_weight=small_network_weight,
        small_network=small_network,
        default_capacity=default_capacity,
    ).fit(model)
    return ranker.rank(broker_rows, k, shared_capacity=shared_capacity, on_too_few=on_too_few)


def fill_pledges(
    model, *, k_default: int = 0, default_capacity: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill the pledges of every broker in the network (:meth:`BrokerRanker.fill_pledges`).

    Returns ``broker_rows`` (R,) int64, ``pairs`` (R, K, 2) int32 and ``scores`` (R, K) float32.
    """
    return (
        BrokerRanker(default_capacity=default_capacity)
        .fit(model)
        .fill_pledges(k_default=k_default)
    )


# ---------------------------------------------------------------------------------- helpers
def _capacity(column: np.ndarray | None, n: int, default: int) -> np.ndarray:
    capacity = np.full(n, int(default), dtype=np.int64)
    if column is not None:
        given = np.isfinite(column)
        capacity[given] = np.maximum(np.floor(column[given]), 0).astype(np.int64)
    return capacity


def count_pairs(degrees: np.ndarray) -> int:
    d = np.asarray(degrees, dtype=np.int64)
    return int((d * (d - 1) // 2).sum())


def _top_per_group(
    group: np.ndarray, score: np.ndarray, a: np.ndarray, b: np.ndarray, m: int, *, single: bool
) -> np.ndarray:
    """Indices of the best ``m`` items per group, sorted by group then best first (ties: lower a,
    then b).
    """
    if single and len(score) > m:
        part = np.argpartition(-score, m - 1)[:m]
        return part[np.lexsort((b[part], a[part], -score[part]))]
    order = np.lexsort((b, a, -score, group))
    return order[_rank_within(group[order]) < m]


def _rank_within(sorted_group: np.ndarray) -> np.ndarray:
    """Position of each item within its run of equal (sorted) group ids."""
    return np.arange(len(sorted_group)) - np.searchsorted(sorted_group, sorted_group, side="left")


def _occurrence_ok(
    local: np.ndarray, a: np.ndarray, b: np.ndarray, limit: np.ndarray
) -> np.ndarray:
    """Pairs (in per-broker best-first order) whose members have each appeared fewer than ``limit``
    times before in that broker's list.
    """
    idx = np.arange(len(local))
    ends = np.concatenate([a, b])
    owner = np.concatenate([idx, idx])
    brokers = np.concatenate([local, local])
    order = np.lexsort((owner, ends, brokers))
    key_b, key_e = brokers[order], ends[order]
    start = np.flatnonzero(np.r_[True, (key_b[1:] != key_b[:-1]) | (key_e[1:] != key_e[:-1])])
    run = np.repeat(start, np.diff(np.r_[start, len(order)]))
    occurrence = np.arange(len(order)) - run
    ok_end = np.empty(len(order), dtype=bool)
    ok_end[order] = occurrence < limit[key_e]
    return ok_end[: len(local)] & ok_end[len(local) :]
