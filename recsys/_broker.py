"""Broker introductions: which of my contacts should I introduce to each other?

A *broker* C knows both sides: for C the candidates are the pairs (A, B) of C's own contacts who
are not connected to each other. Each pair is scored by the fitted model's reciprocal acceptance
model (both A and B must want the meeting), the same score that ranks ordinary slates, then
adjusted, like :class:`recsys.BridgeBonusReranker`, in favour of pairs that bridge two
communities and pairs in which one side has a small network:

.. math:: \\mathrm{broker\\_score}(A, B) = \\exp\\big(\\log p(A, B)
          + w_\\mathrm{bridge}\\,[c(A) \\ne c(B)]
          + w_\\mathrm{small}\\,[\\min(d_A, d_B) < s]\\big)

where ``p`` is the reciprocal acceptance score, ``c`` the community of the training graph,
``d`` the number of connections and ``s`` = ``small_network``. Lists respect the recipients'
capacity (the optional member column ``capacity``, else ``default_capacity``): in a batch, no
member is proposed in more pairs than their capacity across all brokers of the batch. Members
who opted out of introductions (``open_to_intros`` false) are never proposed. No sensitive
attribute is read anywhere here.

Scoring 125,000 pairs one by one through :meth:`PairFeatures.transform` takes seconds; here the
pair features of all of a broker's contacts come from a handful of sparse products of the
contacts' rows (``S·Sᵀ`` for common contacts, ``S·A·Sᵀ`` for walks of length three, ``I·Iᵀ`` for
shared interests), block-diagonal over a batch of brokers, and the logistic acceptance model is
evaluated as the quadratic form it is. Both are checked against the generic path when a
:class:`BrokerRanker` is fitted and fall back to it (slower, same answers) if they disagree.
"""

from __future__ import annotations

import functools
import logging
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from recsys import _candidates
from recsys._candidates import hop_weights
from recsys._explain import summarize_reasons
from recsys._scoring import FEATURE_NAMES, reciprocal, swap_direction

__all__ = [
    "BrokerRanker",
    "TooFewContactsError",
    "common_neighbour_broker_pairs",
    "evaluate_broker",
    "fill_pledges",
    "rank_introductions_to_make",
]

logger = logging.getLogger(__name__)

# : Features the block path computes; any other name in FEATURE_NAMES sends scoring down the
# generic path.
_BLOCK_FEATURES = frozenset(
    {
        "log_adamic_adar",
        "log_resource_allocation",
        "log_common_contacts",
        "log_walks3",
        "walks3_l3",
        "jaccard",
        "log_shared_interests",
        "interest_cosine",
        "embedding_similarity",
        "same_community",
        "both_have_interests",
        "log_degree_self",
        "log_degree_other",
    }
)
# up to this many contact slots in a chunk, embedding similarities come from one D x D product
_DENSE_SLOTS = 2048


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
    block_features_, quadratic_scoring_ : bool
        Whether the fast paths are in use (both are checked against the generic path in ``fit``).

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
        for name in ("network_", "features_", "acceptance_", "communities_"):
            if not hasattr(model, name):
                raise NotFittedError("BrokerRanker.fit needs a fitted IntroductionRecommender")
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
        self._swap = swap_direction(np.arange(len(FEATURE_NAMES), dtype=np.float32)[None, :])[
            0
        ].astype(np.int64)
        self.quadratic_scoring_ = False
        self._quadratic = _quadratic_form(model.acceptance_, len(FEATURE_NAMES), self._swap)
        self.block_features_ = set(FEATURE_NAMES) <= _BLOCK_FEATURES
        self._self_check()
        return self

    def _self_check(self) -> None:
        """Compare the fast paths with the generic ones on a few pairs; fall back where they
        disagree.
        """
        deg = self.degrees_
        candidates = np.flatnonzero((deg >= 3) & (deg <= 40))
        if len(candidates) == 0:
            candidates = np.flatnonzero(deg >= 2)
        if len(candidates) == 0:
            self.block_features_ = False
            return
        broker = candidates[:1]
        a, b, _, fast = self._pairs_and_features(broker)
        if len(a) == 0:
            return
        keep = slice(0, 12)
        a, b, fast = a[keep], b[keep], fast[keep]
        slow = self.model_.features_.transform(a, b)
        if self.block_features_ and not np.allclose(fast, slow, rtol=1e-4, atol=1e-5):
            logger.warning(
                "block pair features disagree with PairFeatures.transform; using the generic "
                "(slower) path"
            )
            self.block_features_ = False
        if self._quadratic is not None:
            expected = self.model_.acceptance_.predict_proba(slow)
            got_ab, got_ba = _decisions(slow, self._quadratic)
            expected_ba = self.model_.acceptance_.predict_proba(swap_direction(slow))
            if np.allclose(_sigmoid(got_ab), expected, rtol=1e-4, atol=1e-6) and np.allclose(
                _sigmoid(got_ba), expected_ba, rtol=1e-4, atol=1e-6
            ):
                self.quadratic_scoring_ = True
            else:
                logger.warning(
                    "the acceptance model is not the expected quadratic form; using "
                    "reciprocal_score (slower)"
                )

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this BrokerRanker is not fitted yet: call fit(model) first")

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
        for chunk in _chunks(deg, self.max_chunk_pairs):
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
        if self._upper is None and ("log_walks3" in FEATURE_NAMES or "walks3_l3" in FEATURE_NAMES):
            upper = sp.triu(adjacency, k=1).tocoo()
            keep = self._middle[upper.row] & self._middle[upper.col]
            self._upper = sp.csr_matrix(
                (upper.data[keep], (upper.row[keep], upper.col[keep])), shape=adjacency.shape
            )
        chunk = _Chunk(adjacency, brokers, upper=self._upper, middle=self._middle)
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
        if not self.block_features_:
            return a, b, local, feats.transform(a, b)
        return a, b, local, self._block_features(chunk)

    def _block_features(self, chunk: _Chunk) -> np.ndarray:
        """Pair features from products of the contacts' rows, block-diagonal over the chunk's
        brokers.
        """
        feats = self.model_.features_
        need = set(FEATURE_NAMES)
        si, sj = chunk.si, chunk.sj
        a, b = chunk.contacts[si], chunk.contacts[sj]
        # S': each contact's neighbours other than their broker, columns keyed (broker, member) so
        # that brokers never mix. The broker is every pair's common contact: added back per broker.
        s = chunk.other_neighbours()
        st = s.T.tocsr()
        h = chunk.brokers[chunk.local]
        common, aa, ra = chunk.common_neighbours(s, st, [None, self._aa_weight, self._ra_weight])
        common += 1.0
        cols = {}
        cols["log_common_contacts"] = np.log1p(common)
        if "log_adamic_adar" in need:
            cols["log_adamic_adar"] = np.log1p(aa + self._aa_weight[h])
        if "log_resource_allocation" in need:
            cols["log_resource_allocation"] = np.log1p((ra + self._ra_weight[h]) * 10)
        if "log_walks3" in need:
            cols["log_walks3"] = np.log1p(chunk.walks3(s, st))
        if "walks3_l3" in need:
            cols["walks3_l3"] = chunk.walks3(s, st, weights=self._l3_weight)
        du = self.degrees_[a].astype(np.float32)
        dv = self.degrees_[b].astype(np.float32)
        union = du + dv - common
        cols["jaccard"] = np.divide(common, union, out=np.zeros_like(common), where=union > 0)
        if need & {"log_shared_interests", "interest_cosine"}:
            cosine, shared = chunk.interest_overlaps(feats.interest_weights)
            cols["interest_cosine"] = cosine
            cols["log_shared_interests"] = np.log1p(shared)
        if "embedding_similarity" in need:
            factors = feats.member_factors
            if len(chunk.contacts) <= _DENSE_SLOTS:
                fc = factors[chunk.contacts]
                cols["embedding_similarity"] = (fc @ fc.T)[si, sj]
            else:
                cols["embedding_similarity"] = np.einsum("ij,ij->i", factors[a], factors[b])
        cols["same_community"] = (feats.communities[a] == feats.communities[b]).astype(np.float32)
        cols["both_have_interests"] = (self._has_interests[a] & self._has_interests[b]).astype(
            np.float32
        )
        cols["log_degree_self"] = np.log1p(du)
        cols["log_degree_other"] = np.log1p(dv)
        # feature-major: each feature is one contiguous row, and scoring reads rows
        return np.stack([np.asarray(cols[name], dtype=np.float32) for name in FEATURE_NAMES]).T

    def acceptance_scores(self, features: np.ndarray) -> np.ndarray:
        """The model's reciprocal acceptance score of pair features, (P,) float32."""
        model = self.model_
        if not self.quadratic_scoring_:
            return model.acceptance_.reciprocal_score(features, how=model.reciprocal)
        d_ab, d_ba = _decisions(features, self._quadratic)
        p_ab, p_ba = _sigmoid(d_ab).astype(np.float32), _sigmoid(d_ba).astype(np.float32)
        return reciprocal(p_ab, p_ba, how=model.reciprocal)

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
    for chunk in _chunks(deg, 1_000_000):
        c = _Chunk(adjacency, rows[chunk])
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


# ---------------------------------------------------------------------------------- evaluation
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
    :func:`recsys._metrics.recall_at_k`). Each broker's list is ranked on its own
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
        "broker/candidate_pairs": float(_count_pairs(degrees[brokers])),
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


# ---------------------------------------------------------------------------------- helpers
def _capacity(column: np.ndarray | None, n: int, default: int) -> np.ndarray:
    capacity = np.full(n, int(default), dtype=np.int64)
    if column is not None:
        given = np.isfinite(column)
        capacity[given] = np.maximum(np.floor(column[given]), 0).astype(np.int64)
    return capacity


def _count_pairs(degrees: np.ndarray) -> int:
    d = np.asarray(degrees, dtype=np.int64)
    return int((d * (d - 1) // 2).sum())


def _chunks(degrees: np.ndarray, max_pairs: int) -> list[np.ndarray]:
    """Positions of brokers grouped so that each group has about ``max_pairs`` candidate pairs (a
    bigger broker alone).
    """
    pairs = np.asarray(degrees, dtype=np.int64)
    pairs = np.where(pairs >= 2, pairs * (pairs - 1) // 2, 0)
    order = np.flatnonzero(pairs > 0)
    if len(order) == 0:
        return []
    group = np.cumsum(pairs[order]) // max(int(max_pairs), 1)
    # contiguous runs of equal group id; a broker bigger than the budget starts (and ends) its own
    # group
    cuts = np.flatnonzero(np.diff(group) > 0) + 1
    return np.split(order, cuts)


@functools.lru_cache(maxsize=512)
def _triu(d: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(d, 1)
    i, j = i.astype(np.int64), j.astype(np.int64)
    i.flags.writeable = False  # shared by every call for this degree
    j.flags.writeable = False
    return i, j


def _slot_pairs(d: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of contact slots within each broker, ``si < sj``: one ``triu_indices`` per
    distinct degree.
    """
    if (
        len(d) == 1 and d[0] >= 2 and off[0] == 0
    ):  # one broker: the cached triangle itself (read-only)
        i, j = _triu(int(d[0]))
        return i, j, np.zeros(len(i), dtype=np.int64)
    si, sj, local = [], [], []
    for g in np.unique(d[d >= 2]):  # distinct degrees, not brokers
        brokers = np.flatnonzero(d == g)
        i, j = _triu(int(g))
        base = off[brokers][:, None]
        si.append((base + i).ravel())
        sj.append((base + j).ravel())
        local.append(np.repeat(brokers, len(i)))
    if not si:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(si), np.concatenate(sj), np.concatenate(local)


class _Chunk:
    """A chunk of brokers laid out as contact *slots*: broker r's contacts are slots
    ``off[r]:off[r+1]``.

    Pairs are slot pairs ``(si, sj)``, ``si < sj``, within one broker (``local``). Every matrix
    here is slot × something with its columns keyed (broker, column), so products of them are
    block-diagonal: brokers never mix. A product is read through ``cell``, each pair's place in
    the flat array of all the brokers' ``d_r × d_r`` blocks (a scatter and a gather, no sort).
    """

    def __init__(
        self,
        adjacency: sp.csr_matrix,
        brokers: np.ndarray,
        *,
        upper: sp.csr_matrix | None = None,
        middle: np.ndarray | None = None,
    ):
        self.adjacency = adjacency
        self.upper = (
            upper  # upper triangle of the edges walks of length three may use in the middle
        )
        self.middle = np.ones(adjacency.shape[0], dtype=bool) if middle is None else middle
        self.n = adjacency.shape[0]
        self.brokers = brokers
        indptr = adjacency.indptr
        self.d = d = (indptr[brokers + 1] - indptr[brokers]).astype(np.int64)
        self.off = off = np.zeros(len(brokers) + 1, dtype=np.int64)
        np.cumsum(d, out=off[1:])
        self.base = np.zeros(len(brokers) + 1, dtype=np.int64)
        np.cumsum(d * d, out=self.base[1:])
        n_slots = int(off[-1])
        self.contacts = adjacency.indices[_ranges(indptr[brokers].astype(np.int64), d)].astype(
            np.int64
        )
        self.slot_broker = np.repeat(np.arange(len(brokers)), d)
        self.sub = adjacency[self.contacts]  # the contacts' own rows
        # every entry (slot a, member x) of those rows, and whether x is a contact of the same
        # broker (then at slot `at`)
        self.entry_slot = np.repeat(np.arange(n_slots, dtype=np.int64), np.diff(self.sub.indptr))
        self.entry_keys = self.slot_broker[self.entry_slot] * self.n + self.sub.indices
        contact_keys = (
            self.slot_broker * self.n + self.contacts
        )  # sorted: brokers in order, contacts sorted within
        at = np.minimum(np.searchsorted(contact_keys, self.entry_keys), max(n_slots - 1, 0))
        self.entry_is_contact = (
            contact_keys[at] == self.entry_keys if n_slots else np.zeros(0, bool)
        )
        self.entry_at = at
        # |N(a) ∩ C| counting only contacts who may be the middle of a walk of length three
        middle_contact = self.entry_is_contact & self.middle[self.sub.indices]
        self.inside = np.bincount(self.entry_slot[middle_contact], minlength=n_slots)
        self.si, self.sj, self.local = _slot_pairs(d, off)
        self.cell = self._cells(self.si, self.sj)

    def _cells(self, a_slot: np.ndarray, b_slot: np.ndarray) -> np.ndarray:
        if len(self.d) == 1:
            return a_slot * self.d[0] + b_slot
        r = self.slot_broker[a_slot]
        return self.base[r] + (a_slot - self.off[r]) * self.d[r] + (b_slot - self.off[r])

    def common_neighbours(
        self, s: sp.csr_matrix, st: sp.csr_matrix, weights: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Per pair: ``Σ w[x]`` over the common neighbours x in ``S'`` (other than the broker), one
        array per weight vector.

        Pairs of slots are generated within each neighbour's list of adjacent slots (the rows of
        ``S'ᵀ``), which is cheaper than three ``S'·diag(w)·S'ᵀ`` products when most contacts
        share only their broker.
        """
        counts = np.diff(st.indptr)
        pi, pj, group = _slot_pairs(counts, st.indptr[:-1].astype(np.int64))
        cells = self._cells(st.indices[pi].astype(np.int64), st.indices[pj].astype(np.int64))
        size = int(self.base[-1])
        members = self.members[group]
        return [
            np.bincount(cells, weights=None if w is None else w[members], minlength=size)[
                self.cell
            ].astype(np.float32)
            for w in weights
        ]

    def keep(self, mask: np.ndarray) -> None:
        self.si, self.sj, self.local, self.cell = (
            self.si[mask],
            self.sj[mask],
            self.local[mask],
            self.cell[mask],
        )

    def connected(self) -> np.ndarray:
        """(P,) bool: the two contacts of each pair are connected already."""
        linked = np.zeros(int(self.base[-1]), dtype=bool)
        hit = self.entry_is_contact
        linked[self._cells(self.entry_slot[hit], self.entry_at[hit])] = True
        return linked[self.cell]

    def gather(self, matrix: sp.spmatrix) -> np.ndarray:
        """``matrix[si[p], sj[p]]`` of a block-diagonal slot × slot product, (P,) float32."""
        if len(self.d) == 1:  # one broker: its block is the whole (small) matrix
            return matrix.toarray().ravel()[self.cell].astype(np.float32)
        coo = matrix.tocoo()
        flat = np.zeros(int(self.base[-1]), dtype=np.float32)
        flat[self._cells(coo.row.astype(np.int64), coo.col.astype(np.int64))] = coo.data
        return flat[self.cell]

    def keyed_rows(self, member_matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The contacts' rows of a member × column matrix, columns keyed (broker, column) and made
        compact.
        """
        rows = member_matrix[self.contacts].tocsr()
        if len(self.d) == 1:
            return rows
        keys = np.repeat(self.slot_broker, np.diff(rows.indptr)) * rows.shape[1] + rows.indices
        codes, uniques = pd.factorize(keys)
        return sp.csr_matrix(
            (rows.data, codes, rows.indptr), shape=(rows.shape[0], max(len(uniques), 1))
        )

    def interest_overlaps(
        self, interest_weights: sp.csr_matrix, *, dense_from: int = 16
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per pair: cosine of the TF-IDF rows and the number of shared interests, two (P,)
        float32.

        For one broker the interests held by many of the contacts (``dense_from`` or more) go
        through one dense product: a few popular interests make most of a sparse product's work
        (500 contacts of the synthetic network: 10 ms sparse, 4 ms split).
        """
        rows = self.keyed_rows(interest_weights)
        if len(self.d) > 1 or len(self.contacts) > _DENSE_SLOTS:
            pattern = sp.csr_matrix(
                ((rows.data != 0).astype(np.float32), rows.indices, rows.indptr), shape=rows.shape
            )
            return self.gather(rows @ rows.T.tocsr()), self.gather(pattern @ pattern.T.tocsr())
        held = np.bincount(rows.indices, minlength=rows.shape[1])
        columns = rows.tocsc()
        heavy = columns[:, np.flatnonzero(held >= dense_from)].toarray()
        light = columns[:, np.flatnonzero((held > 0) & (held < dense_from))].tocsr()
        light_pattern = sp.csr_matrix(
            (np.ones(light.nnz, dtype=np.float32), light.indices, light.indptr), shape=light.shape
        )
        heavy_pattern = (heavy != 0).astype(np.float32)
        cosine = heavy @ heavy.T + (light @ light.T.tocsr()).toarray()
        shared = (
            heavy_pattern @ heavy_pattern.T + (light_pattern @ light_pattern.T.tocsr()).toarray()
        )
        return cosine.ravel()[self.cell].astype(np.float32), shared.ravel()[self.cell].astype(
            np.float32
        )

    def other_neighbours(self) -> sp.csr_matrix:
        """``S'`` (D, K): each contact slot's neighbours other than their broker, keyed (broker,
        member).
        """
        other = self.sub.indices != self.brokers[self.slot_broker[self.entry_slot]]
        self.keys, col = np.unique(self.entry_keys[other], return_inverse=True)
        self.members = self.keys % self.n
        return sp.csr_matrix(
            (np.ones(len(col), dtype=np.float32), (self.entry_slot[other], col.ravel())),
            shape=(len(self.contacts), max(len(self.keys), 1)),
        )

    def weighted(self, s: sp.csr_matrix, member_weights: np.ndarray) -> sp.csr_matrix:
        """``S'`` with each column weighted by its member's weight."""
        return sp.csr_matrix(
            (member_weights[self.members[s.indices]].astype(np.float32), s.indices, s.indptr),
            shape=s.shape,
        )

    def walks3(
        self, s: sp.csr_matrix, st: sp.csr_matrix, *, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Walks ``a → x → y → b`` of length three for every pair, (P,) float32: ``(A M A M A)[a,
        b]``;
        with per-member ``weights`` each walk counts ``weights[x] · weights[y]`` (``1/√deg`` gives
        L3).

        ``M`` keeps the middle members with few enough connections (``middle``; see
        :class:`recsys.PairFeatures`). ``S·A·Sᵀ`` with ``A`` whole builds every walk of length
        two from every contact (800,000 for 500 contacts of the synthetic network) before the third
        step. Here the walks through the broker ``h`` are counted directly (``x = h`` gives
        ``|N(b) ∩ C|``, ``y = h`` gives ``|N(a) ∩ C|``, C the broker's contacts, when ``h`` may
        be a middle member) and the rest is ``S'·A_U·S'ᵀ``, with ``A_U`` the middle edges among the
        contacts' other neighbours ``U``; as ``A_U`` is symmetric, only its upper triangle ``T``
        is multiplied: ``S'·A_U·S'ᵀ = V + Vᵀ`` with ``V = S'·T·S'ᵀ``.
        """
        upper = self._upper_edges()
        inside, through = self.inside, self.middle[self.brokers[self.local]].astype(np.float64)
        if weights is not None:
            s = self.weighted(s, weights)
            st = s.T.tocsr()
            middle_contact = self.entry_is_contact & self.middle[self.sub.indices]
            inside = np.bincount(
                self.entry_slot[middle_contact],
                weights=weights[self.sub.indices[middle_contact]],
                minlength=len(self.inside),
            )
            through = through * weights[self.brokers[self.local]]
        if (
            len(self.d) == 1 and len(self.contacts) <= _DENSE_SLOTS
        ):  # one broker: (T S'ᵀ) dense, then a sparse-dense product
            v = np.asarray(s @ (upper @ st).toarray())
            walks = (v + v.T).ravel()[self.cell]
        else:
            v = ((s @ upper) @ st).tocsr()
            walks = self.gather(v + v.T)
        through_broker = (inside[self.si] + inside[self.sj]) * through
        return (walks + through_broker).astype(np.float32)

    def _upper_edges(self) -> sp.csr_matrix:
        """The upper triangle of ``A_U`` (K, K): the connections among the neighbours of one
        broker's contacts.
        """
        width = max(len(self.keys), 1)
        if len(self.keys) == 0:
            return sp.csr_matrix((width, width), dtype=np.float32)
        if (
            len(self.d) == 1 and self.upper is not None
        ):  # members are sorted: the triangle restricted is the restricted triangle
            return self.upper[self.members][:, self.members]
        indptr, indices = self.adjacency.indptr, self.adjacency.indices
        ux, ur = self.members, self.keys // self.n
        deg = (indptr[ux + 1] - indptr[ux]).astype(np.int64)
        ex = np.repeat(np.arange(len(ux)), deg)
        wanted = ur[ex] * self.n + indices[_ranges(indptr[ux].astype(np.int64), deg)]
        ey = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        hit = (
            (self.keys[ey] == wanted)
            & (ey > ex)
            & self.middle[ux[ex]]
            & self.middle[self.members[ey]]
        )
        return sp.csr_matrix(
            (np.ones(int(hit.sum()), dtype=np.float32), (ex[hit], ey[hit])), shape=(width, width)
        )


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - before, counts) + np.arange(
        int(counts.sum()), dtype=np.int64
    )


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


def _quadratic_form(acceptance, n_features: int, swap: np.ndarray) -> dict | None:
    """The logistic model's decision function as a quadratic form of the standardised features; or
    None.

    :class:`recsys.AcceptanceModel` is a logistic regression on standardised features and their
    standardised pairwise products, so its decision function is ``z̃ᵀ Q z̃ + c`` with
    ``z̃ = [(x - mean) / scale, 1]``: one ``(F+1) × (F+1)`` product per pair instead of
    building the ``P × F(F+3)/2`` expanded matrix, twice. The two directions of a pair differ
    only in the few columns :func:`swap_direction` exchanges, so ``Q`` is split into the shared
    (``f``) and swapped (``m``) rows: ``fᵀ Q_ff f`` is computed once for both directions.
    """
    try:
        mean = np.asarray(acceptance.mean_, dtype=np.float64)
        scale = np.asarray(acceptance.scale_, dtype=np.float64)
        coef = np.asarray(acceptance.coef_, dtype=np.float64).ravel()
        intercept = float(acceptance.intercept_)
        pairs = getattr(acceptance, "pairs_", None)
        if pairs is None:  # plain logistic regression on the standardised features
            pairs = np.column_stack([np.arange(n_features), np.full(n_features, n_features)])
            mean2, scale2 = np.zeros(n_features), np.ones(n_features)
        else:
            mean2 = np.asarray(acceptance.mean2_, dtype=np.float64)
            scale2 = np.asarray(acceptance.scale2_, dtype=np.float64)
        pairs = np.asarray(pairs, dtype=np.int64)
        if (
            mean.shape != (n_features,)
            or scale.shape != (n_features,)
            or pairs.shape != (len(coef), 2)
            or mean2.shape != coef.shape
        ):
            return None
        if pairs.min() < 0 or pairs.max() > n_features:
            return None
    except (AttributeError, TypeError, ValueError):
        return None
    weight = coef / scale2
    q = np.zeros((n_features + 1, n_features + 1))
    np.add.at(q, (pairs[:, 0], pairs[:, 1]), weight)
    q = (q + q.T) / 2
    swap = np.asarray(swap)
    moving = np.flatnonzero(swap != np.arange(n_features))
    fixed = np.setdiff1d(np.arange(n_features + 1), moving)  # the constant 1 is column n_features
    f32 = np.float32
    return {
        "mean": mean.astype(f32)[:, None],
        "scale": scale.astype(f32)[:, None],
        "fixed_features": fixed[:-1],
        "moving": moving,
        "swapped_from": swap[moving],
        "q_ff": q[np.ix_(fixed, fixed)].astype(f32),
        "q_mf": (2 * q[np.ix_(moving, fixed)]).astype(f32),
        "q_mm": q[np.ix_(moving, moving)].astype(f32),
        "const": intercept - float(np.sum(weight * mean2)),
    }


def _decisions(features: np.ndarray, form: dict) -> tuple[np.ndarray, np.ndarray]:
    """Decision function of each pair (features (P, F)) seen from each side, two (P,) float32
    arrays.

    Feature-major float32 arithmetic: the standardised features are of order one and the result
    agrees with :meth:`AcceptanceModel.predict_proba` to about 1e-6.
    """
    xt = np.ascontiguousarray(
        features.T, dtype=np.float32
    )  # (F, P); a view when features came transposed
    n_pairs = xt.shape[1]
    fixed, moving = form["fixed_features"], form["moving"]
    f = np.empty(
        (len(fixed) + 1, n_pairs), dtype=np.float32
    )  # the shared standardised rows, then the constant 1
    for row, k in enumerate(fixed):  # row by row: no temporary copy of the features
        np.subtract(xt[k], form["mean"][k], out=f[row])
        f[row] /= form["scale"][k]
    f[-1] = 1.0
    shared = np.einsum("ji,ji->i", form["q_ff"] @ f, f) + np.float32(form["const"])
    cross = form["q_mf"] @ f
    mean_m, scale_m = form["mean"][moving], form["scale"][moving]
    out = []
    for m in ((xt[moving] - mean_m) / scale_m, (xt[form["swapped_from"]] - mean_m) / scale_m):
        out.append(
            shared + np.einsum("ji,ji->i", cross, m) + np.einsum("ji,ji->i", form["q_mm"] @ m, m)
        )
    return out[0], out[1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
