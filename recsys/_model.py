"""The introduction recommender: candidate pool → reciprocal acceptance score → re-ranked slate."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from recsys._candidates import (
    AdamicAdarCandidates,
    ALSCandidates,
    InterestOverlapCandidates,
    fit_als_factors,
    merge_pools,
    tfidf_interests,
)
from recsys._communities import TIER_NAMES, detect_communities, network_size_tier_codes
from recsys._evaluation import rank_all
from recsys._explain import explain_introductions
from recsys._rerank import (
    PREFERENCE_DEPTH,
    SlateReranker,
    _fill_floor,
    _gather_mask,
    _monotone,
    assign_with_capacity,
    plus_one_quota,
    top_k,
)
from recsys._scoring import (
    FEATURE_NAMES,
    AcceptanceModel,
    ConstrainedAcceptanceModel,
    PairFeatures,
    pool_scores_from_features,
)
from recsys._split import heldout_matrix, holdout_split
from recsys._tuning import DEFAULT_GRID, DEFAULT_TARGETS, tune_reranker
from recsys.data import Network

__all__ = ["IntroductionRecommender"]

logger = logging.getLogger(__name__)


class IntroductionRecommender(BaseEstimator):
    """Who should meet whom: the whole pipeline as one estimator.

    ``fit(network)`` learns from the training network: communities (Leiden), ALS member
    embeddings over interests, the candidate sources, and an acceptance model trained on
    connections split off *inside* the training network (never the evaluation hold-out).
    ``rank(member_rows, k)`` returns slates for a batch of members.

    Parameters
    ----------
    pool_size : int
        Candidates kept per member after merging the sources.
    n_adamic_adar, n_interests, n_als : int
        Candidates asked of each source (0 switches a source off).
    three_hop_weight : float
        Weight of walks of length three in the friends-of-friends source (0: two hops only).
    three_hop_middles : int
        Walks of length three go on only from this many most-walked two-hop members (0: all).
        64 ranks a million-member batch 1.23× faster at the same recall@20 (Deezer 0.3585 against
        0.3593, 100,000 synthetic members 0.2557 against 0.2553; ``benchmarks/RESULTS.md``).
    interest_max_df : float
        Interests liked by more than this share of members do not propose candidates.
    als_factors, als_iterations, als_regularization, als_alpha : ALS hyperparameters.
    als_seed : int, optional
        Seed of the ALS fit (default: ``random_state``).
    als_index : {"auto", "exact", "hnsw", "ivf"}
        Exact member-to-member search, a faiss HNSW or IVF index, or exact up to 50,000 members and
        IVF above.
    reciprocal : {"harmonic", "product", "none"}
        How the two directions' acceptance probabilities combine.
    validation_fraction : float
        Share of training connections split off to train the acceptance model.
    max_training_members : int
        At most this many members' pools train the acceptance model.
    rerank : bool
        ``False`` ranks by the acceptance score alone (the unconstrained baseline).
    bridge_weight, degree_penalty, plus_one : see :class:`BridgeBonusReranker`; with
        ``tune_rerank`` the two weights are starting points that ``fit`` tunes on validation data.
    bound_tolerance : float or None
        Slack on the network-size-tier exposure bounds at every prefix (None: no bounds).
    bound_attribute : str or None
        Opt-in: put the exposure bounds at every prefix on this consented sensitive attribute
        (its groups at their population shares, "undisclosed" a group of its own) instead of on
        network-size tiers, with the slack ``bound_tolerance`` (0.1 if None), not tuned away.
        The model then keeps each member's group as a bare integer code (no values, no labels)
        and ranking reads it; by default (None) nothing derived from a sensitive attribute is
        kept or read when ranking.
    capacity_multiple : float or None
        In batch ranking no member appears in more than ``capacity_multiple × k × R / n`` slates
        (R slates, n members), or their own ``capacity`` column where set. ``None`` (the default)
        tunes it with the weights (``tune_rerank``), else it is 5.
    floor_slots : int or None
        Places at the end of a slate of 20 (scaled to other k) given to the least exposed of the
        member's candidates (:func:`assign_with_capacity`). ``None`` tunes it, else it is fixed
        (untuned: 0).
    floor_depth : int or None
        How deep in the member's preference list those places look, times k (2 to
        ``PREFERENCE_DEPTH``). ``None`` tunes it (untuned: 2).
    tune_rerank : bool
        Tune ``bridge_weight``, ``degree_penalty``, ``bound_tolerance``, ``capacity_multiple``,
        ``floor_slots`` and ``floor_depth`` on split-off validation
        connections to meet ``rerank_targets`` at the least loss of recall (see
        :func:`tune_reranker`).
    rerank_targets : dict, optional
        Overrides of :data:`DEFAULT_TARGETS`.
    fairness : {"none", "tpr_parity", "equalized_odds"}
        Train the acceptance model under a fairlearn reductions constraint across pair types
        (same community / across communities; structural, no sensitive data), see
        :class:`ConstrainedAcceptanceModel`.
    random_state : int
        Seed for every random step of ``fit``.

    Examples
    --------
    >>> from recsys import synthetic_network
    >>> net = synthetic_network(400, seed=3)
    >>> model = IntroductionRecommender(pool_size=50, als_iterations=3).fit(net)
    >>> ids, scores = model.rank([0, 1, 2], k=5)
    >>> ids.shape, ids.dtype.name, scores.dtype.name
    ((3, 5), 'int32', 'float32')
    """

    def __init__(
        self,
        *,
        pool_size: int = 300,
        n_adamic_adar: int = 200,
        three_hop_weight: float = 0.03,
        three_hop_middles: int = 64,
        n_interests: int = 100,
        n_als: int = 100,
        interest_max_df: float = 0.05,
        als_factors: int = 32,
        als_iterations: int = 15,
        als_regularization: float = 0.05,
        als_alpha: float = 2.0,
        als_index: Literal["auto", "exact", "hnsw", "ivf"] = "auto",
        als_seed: int | None = None,
        reciprocal: Literal["harmonic", "product", "none"] = "harmonic",
        validation_fraction: float = 0.2,
        max_training_members: int = 20000,
        rerank: bool = True,
        bridge_weight: float = 0.5,
        degree_penalty: float = 0.05,
        plus_one: Literal["off", "pledged", "all"] = "pledged",
        bound_tolerance: float | None = 0.1,
        bound_attribute: str | None = None,
        capacity_multiple: float | None = None,
        floor_slots: int | None = None,
        floor_depth: int | None = None,
        tune_rerank: bool = True,
        rerank_targets: dict | None = None,
        fairness: Literal["none", "tpr_parity", "equalized_odds"] = "none",
        random_state: int = 0,
    ):
        self.pool_size = pool_size
        self.n_adamic_adar = n_adamic_adar
        self.three_hop_weight = three_hop_weight
        self.three_hop_middles = three_hop_middles
        self.n_interests = n_interests
        self.n_als = n_als
        self.interest_max_df = interest_max_df
        self.als_factors = als_factors
        self.als_iterations = als_iterations
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.als_seed = als_seed
        self.als_index = als_index
        self.reciprocal = reciprocal
        self.validation_fraction = validation_fraction
        self.max_training_members = max_training_members
        self.rerank = rerank
        self.bridge_weight = bridge_weight
        self.degree_penalty = degree_penalty
        self.plus_one = plus_one
        self.bound_tolerance = bound_tolerance
        self.bound_attribute = bound_attribute
        self.capacity_multiple = capacity_multiple
        self.floor_slots = floor_slots
        self.floor_depth = floor_depth
        self.tune_rerank = tune_rerank
        self.rerank_targets = rerank_targets
        self.fairness = fairness
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(
        self, network: Network, *, progress=None, member_factors: np.ndarray | None = None
    ) -> IntroductionRecommender:
        """Learn everything from ``network`` (the training graph). ``progress(step)`` is called per
        stage.

        ``member_factors`` (n_members, als_factors) replaces implicit's ALS with embeddings fitted
        elsewhere (MLlib ALS on Spark: ``candidates.als.engine: spark``).
        """
        step = progress or (lambda name: None)
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if self.floor_depth is not None and not 2 <= self.floor_depth <= PREFERENCE_DEPTH:
            raise ValueError(
                f"floor_depth must be between 2 and {PREFERENCE_DEPTH} (times k), got "
                f"{self.floor_depth}"
            )
        if self.n_adamic_adar + self.n_interests + self.n_als == 0:
            raise ValueError("at least one candidate source needs n > 0")
        self.bound_groups_ = (
            _bound_groups(network, self.bound_attribute) if self.bound_attribute else None
        )
        step("embeddings")
        if member_factors is not None:
            factors = np.ascontiguousarray(member_factors, dtype=np.float32)
            if factors.shape != (network.n_members, self.als_factors):
                raise ValueError(
                    f"member_factors has shape {factors.shape}; this network and model need "
                    f"({network.n_members}, {self.als_factors})"
                )
        else:
            factors = fit_als_factors(
                network.member_interests,
                factors=self.als_factors,
                iterations=self.als_iterations,
                regularization=self.als_regularization,
                alpha=self.als_alpha,
                random_state=self.random_state if self.als_seed is None else self.als_seed,
            )
        interest_weights = tfidf_interests(network.member_interests)

        step("acceptance model")
        inner_train, inner_val = holdout_split(
            network, fraction=self.validation_fraction, seed=self.random_state + 1
        )
        inner = self._build_ranking_state(inner_train, factors, interest_weights)
        features, labels, pools = self._training_pairs(inner, inner_train, inner_val)
        extra = _introduction_pairs(network, inner["features"])
        if extra is not None:
            features, labels = np.vstack([features, extra[0]]), np.concatenate([labels, extra[1]])
        if self.fairness == "none":
            self.acceptance_ = AcceptanceModel().fit(features, labels)
        else:
            pair_type = np.where(
                features[:, FEATURE_NAMES.index("same_community")] > 0, "same", "cross"
            )
            self.acceptance_ = ConstrainedAcceptanceModel(constraint=self.fairness).fit(
                features, labels, sensitive_features=pair_type
            )
        self.n_training_pairs_ = int(len(labels))
        self.n_training_positives_ = int(labels.sum())
        scores, outside = self._pool_scores(pools)
        self.rerank_params_ = {
            "bridge_weight": self.bridge_weight,
            "degree_penalty": self.degree_penalty,
            "bound_tolerance": self._opt_in_tolerance()
            if self.bound_attribute
            else self.bound_tolerance,
            "capacity_multiple": DEFAULT_CAPACITY_MULTIPLE
            if self.capacity_multiple is None
            else self.capacity_multiple,
            "floor_slots": self.floor_slots or 0,
            "floor_depth": self.floor_depth or 2,
            "bonus": "linear",
            "score_scale": _score_scale(scores, k=20),
        }
        self.rerank_report_ = {"tuned": False}
        if self.rerank and self.tune_rerank:
            step("tuning the re-ranker")
            tuned, self.rerank_report_ = self._tune(
                inner, inner_train, inner_val, pools, scores, outside
            )
            self.rerank_params_.update(tuned)

        step("communities and sources")
        # the interest embeddings are the same for both graphs: reuse the inner search index
        als = inner["sources"].get("als")
        state = self._build_ranking_state(
            network,
            factors,
            interest_weights,
            index_bytes=als.index_bytes() if als is not None else None,
        )
        self._set_state(network, state)
        return self

    def _pool_scores(self, pools: dict) -> tuple[np.ndarray, np.ndarray]:
        """Reciprocal scores (-inf padded) and the outside mask of the validation pools."""
        return pool_scores_from_features(
            pools["ids"], pools["features"], self.acceptance_, how=self.reciprocal
        )

    def _tune(
        self,
        inner: dict,
        inner_train: Network,
        inner_val: np.ndarray,
        pools: dict,
        scores: np.ndarray,
        outside: np.ndarray,
    ):
        rows, ids = pools["rows"], pools["ids"]
        relevant = heldout_matrix(inner_val, inner_train.n_members)[rows]
        fixed = {"bonus": "linear", "score_scale": self.rerank_params_["score_scale"]}

        def make(params: dict) -> SlateReranker:
            return self._make_reranker(inner_train, inner["communities"], **fixed, **params)

        return tune_reranker(
            make,
            member_rows=rows,
            pool_ids=ids,
            scores=scores,
            outside=outside,
            relevant=relevant,
            communities=inner["communities"],
            sensitive=inner_train.sensitive,
            capacity=lambda multiple: self.slate_capacity(
                inner_train, n_slates=len(rows), k=20, multiple=multiple
            ),
            k=20,
            targets={**DEFAULT_TARGETS, **(self.rerank_targets or {})},
            grid=self._tuning_grid(),
        )

    def _opt_in_tolerance(self) -> float:
        return 0.1 if self.bound_tolerance is None else self.bound_tolerance

    def _tuning_grid(self) -> dict:
        grid = dict(DEFAULT_GRID)
        if self.capacity_multiple is not None:
            grid["capacity_multiple"] = (self.capacity_multiple,)
        if self.floor_slots is not None:
            grid["floor_slots"] = (self.floor_slots,)
        if self.floor_depth is not None:
            grid["floor_depth"] = (self.floor_depth,)
        if (
            self.bound_attribute
        ):  # bounds on a consented attribute were asked for: never tuned away
            grid["bound_tolerance"] = (self._opt_in_tolerance(),)
        return grid

    def _build_ranking_state(
        self,
        network: Network,
        factors: np.ndarray,
        interest_weights,
        *,
        communities: np.ndarray | None = None,
        index_bytes: np.ndarray | None = None,
    ) -> dict:
        """Candidate sources and pair features over ``network`` (fitted, or restored from
        arrays).
        """
        if communities is None:
            communities = detect_communities(network.adjacency, random_state=self.random_state)
        sources = {}
        if self.n_adamic_adar:
            sources["adamic_adar"] = AdamicAdarCandidates(
                three_hop_weight=self.three_hop_weight, three_hop_middles=self.three_hop_middles
            ).fit(network)
        if self.n_interests:
            sources["interests"] = InterestOverlapCandidates(max_df=self.interest_max_df).fit(
                network
            )
        if self.n_als:
            sources["als"] = ALSCandidates(
                index=self.als_index, random_state=self.random_state
            ).set_factors(network, factors, index_bytes)
        features = PairFeatures(
            adjacency=network.adjacency,
            member_interests=network.member_interests,
            interest_weights=interest_weights,
            member_factors=factors,
            communities=communities,
        )
        return {"communities": communities, "sources": sources, "features": features}

    def _set_state(self, network: Network, state: dict) -> None:
        self.network_ = network
        self.communities_ = state["communities"]
        self.sources_ = state["sources"]
        self.features_ = state["features"]
        self.member_factors_ = state["features"].member_factors
        self.reranker_ = self._make_reranker(network, self.communities_, **self.rerank_params_)

    def _make_reranker(
        self,
        network: Network,
        communities: np.ndarray,
        *,
        bridge_weight: float,
        degree_penalty: float,
        bound_tolerance: float | None,
        bonus: str = "log",  # models saved before the linear bonus carry no "bonus" key
        score_scale: float = 1.0,
        capacity_multiple: float | None = None,  # the assignment's, not the re-ranker's
        floor_slots: int = 0,  # likewise
        floor_depth: int = 2,  # likewise
    ) -> SlateReranker:
        """The slate re-ranker: exposure bounds on network-size tiers (or, opted in, on the bound
        attribute's groups), target = population shares."""
        degrees = network.degrees
        groups = getattr(self, "bound_groups_", None)
        if groups is None:
            groups = network_size_tier_codes(degrees)
            shares = np.bincount(groups, minlength=len(TIER_NAMES)) / max(len(groups), 1)
        else:
            shares = np.bincount(groups) / max(len(groups), 1)
        return SlateReranker(
            bridge_weight=bridge_weight,
            degree_penalty=degree_penalty,
            bound_tolerance=bound_tolerance,
            plus_one=self.plus_one,
            bonus=bonus,
            score_scale=score_scale,
        ).fit(
            communities=communities,
            degrees=degrees,
            member_spans_one_community=_spans_one_community(network.adjacency, communities),
            pledged=network.bool_attribute("plus_one", default=False),
            group_codes=groups,
            group_shares=shares,
        )

    def slate_capacity(
        self, network: Network, *, n_slates: int, k: int, multiple: float | None = None
    ) -> np.ndarray:
        """Slates each member may appear in, for a batch of ``n_slates`` slates of ``k``: their own
        ``capacity`` column where set, else ``multiple`` (default: the tuned ``capacity_multiple``,
        else the parameter) times the average."""
        if multiple is None:
            multiple = (
                getattr(self, "rerank_params_", {}).get("capacity_multiple")
                or self.capacity_multiple
                or DEFAULT_CAPACITY_MULTIPLE
            )
        mean_exposure = k * n_slates / max(network.n_members, 1)
        cap = np.full(
            network.n_members, max(1, int(np.ceil(multiple * mean_exposure))), dtype=np.int64
        )
        own = network.numeric_attribute("capacity")
        if own is not None:
            has = np.isfinite(own)
            cap[has] = np.maximum(own[has], 0).astype(np.int64)
        return cap

    def _source_sizes(self) -> dict[str, int]:
        return {
            "adamic_adar": self.n_adamic_adar,
            "interests": self.n_interests,
            "als": self.n_als,
        }

    def _training_pairs(
        self, inner: dict, inner_train: Network, inner_val: np.ndarray, *, batch_size: int = 2000
    ):
        """Pools of members with split-off connections: pooled split-off pairs are positives."""
        rng = np.random.default_rng(self.random_state)
        members = np.unique(inner_val.ravel())
        if len(members) > self.max_training_members:
            members = np.sort(rng.choice(members, self.max_training_members, replace=False))
        members = members.astype(np.int64)
        ids_parts, feature_parts = [], []
        for start in range(0, len(members), batch_size):  # batches bound the three-hop matrices
            batch = members[start : start + batch_size]
            batch_ids, _ = self._pool(inner, batch)
            rb, jb = np.nonzero(batch_ids >= 0)
            feature_parts.append(inner["features"].transform(batch[rb], batch_ids[rb, jb]))
            ids_parts.append(batch_ids)
        ids = np.vstack(ids_parts)
        features = np.vstack(
            feature_parts
        )  # row-major over the batches: the order of np.nonzero(ids)
        r, j = np.nonzero(ids >= 0)
        u = members[r]
        v = ids[r, j].astype(np.int64)
        n = inner_train.n_members
        val_keys = np.concatenate(
            [
                inner_val[:, 0].astype(np.int64) * n + inner_val[:, 1],
                inner_val[:, 1].astype(np.int64) * n + inner_val[:, 0],
            ]
        )
        labels = np.isin(u * n + v, val_keys).astype(np.int8)
        # keep every positive and a seeded sample of negatives (at most 30 per positive)
        neg = np.flatnonzero(labels == 0)
        max_neg = max(30 * int(labels.sum()), 1000)
        if len(neg) > max_neg:
            neg = rng.choice(neg, max_neg, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(labels == 1), neg]))
        logger.info("acceptance model: %d pairs, %d positives", len(keep), int(labels[keep].sum()))
        pools = {"rows": members, "ids": ids, "features": features}
        return features[keep], labels[keep], pools

    # ------------------------------------------------------------------ rank
    def _pool(self, state: dict, member_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merged pool: ids and source bits."""
        sizes = self._source_sizes()
        found = {
            name: src.candidates(member_rows, sizes[name])
            for name, src in state["sources"].items()
        }
        return merge_pools(found, pool_size=self.pool_size)

    def pool(self, member_rows) -> tuple[np.ndarray, np.ndarray]:
        """Merged candidate pool: ``ids`` (R, pool_size) int32 and ``source_bits`` (R, pool_size)
        uint8.
        """
        rows = self._check_rows(member_rows)
        return self._pool(self._state(), rows)

    def _state(self) -> dict:
        return {
            "sources": self.sources_,
            "features": self.features_,
            "communities": self.communities_,
        }

    def score_pool(self, member_rows, pool_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reciprocal acceptance score (R, P) float32 (-inf at padding) and the outside mask (R, P)
        bool.
        """
        rows = self._check_rows(member_rows)
        return self.features_.score_pools(rows, pool_ids, self.acceptance_, how=self.reciprocal)

    def rank(
        self,
        member_rows,
        k: int = 20,
        *,
        rerank: bool | None = None,
        unavailable: np.ndarray | None = None,
        exposure: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slates for a batch of members.

        Parameters
        ----------
        member_rows : int or array-like of int, shape (R,)
        k : int
            Slate size.
        rerank : bool, optional
            Override the ``rerank`` parameter for this call.
        unavailable : ndarray (n_members,) bool, optional
            Members taken out of every pool before scoring and re-ranking (serving passes those
            whose recent inbound introductions reached their capacity).
        exposure : ndarray (n_members,) float, optional
            How often each member has been shown lately (serving passes its decayed inbound
            counts). With it, the last places of each slate go to the least exposed of the
            member's next candidates, as batch ranking's assignment does (:meth:`assign`);
            without it, slates are the re-ranker's alone.

        Returns
        -------
        ids : ndarray (R, k) int32, padded with -1
        scores : ndarray (R, k) float32, padded with -inf, sorted best first
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        rows = self._check_rows(member_rows)
        pool_ids, _ = self._pool(self._state(), rows)
        if unavailable is not None:
            unavailable = np.asarray(unavailable)
            if unavailable.dtype != bool or unavailable.shape != (self.network_.n_members,):
                raise ValueError(
                    "unavailable must be a boolean array of one entry per member "
                    f"({self.network_.n_members}), "
                    f"got {unavailable.dtype} of shape {unavailable.shape}"
                )
            pool_ids = _without(pool_ids, unavailable)
        scores, outside = self.score_pool(rows, pool_ids)
        use_rerank = self.rerank if rerank is None else rerank
        if not use_rerank:
            return top_k(pool_ids, scores, k)
        floor = self._floor_slots(k) if exposure is not None else 0
        if not floor:
            return self.reranker_.rerank(rows, pool_ids, scores, k, outside=outside)
        exposure = np.asarray(exposure, dtype=np.float64)
        if exposure.shape != (self.network_.n_members,):
            raise ValueError(
                f"exposure must have one entry per member ({self.network_.n_members}), got "
                f"shape {exposure.shape}"
            )
        head_ids, head_scores = self.reranker_.rerank(
            rows, pool_ids, scores, k - floor, outside=outside
        )
        depth = self._floor_depth(k)
        prefs, pref_scores, _ = self.reranker_.preferences(
            rows, pool_ids, scores, depth, outside=outside
        )
        pref_outside = _gather_mask(pool_ids, outside, prefs)
        max_inside = plus_one_quota(prefs, pref_outside, self.reranker_.required_rows(rows), k)
        ids, got = _fill_floor(
            prefs,
            pref_scores,
            np.inf,
            head_ids,
            head_scores,
            k,
            inside=~pref_outside,
            max_inside=max_inside,
            depth=depth,
            exposure=exposure,
        )
        return ids, _monotone(got)

    def rank_batch(
        self, member_rows, k: int = 20, *, batch_size: int = 4000, progress=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slates for many members at once, with recipient capacity held across all of them.

        Each member's pool is re-ranked into a preference list of ``PREFERENCE_DEPTH × k``; then
        one global
        assignment (:func:`assign_with_capacity`) fills the slates so that no member appears in
        more slates than their capacity, and members who keep the +1 balance take no more
        introductions within two hops than beyond. Without re-ranking this is :meth:`rank`.
        """
        rows = self._check_rows(member_rows)
        if not self.rerank:
            slates = rank_all(self.rank, rows, k=k, batch_size=batch_size, progress=progress)
            return slates.ids, slates.scores
        ids, sc, out = self.preference_lists(rows, k, batch_size=batch_size, progress=progress)
        return self.assign(rows, ids, sc, out, k)

    def preference_lists(
        self, member_rows, k: int = 20, *, batch_size: int = 4000, progress=None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first half of :meth:`rank_batch`: each member's re-ranked preference list.

        Returns ``(ids, scores, outside)`` of shape ``(len(member_rows), PREFERENCE_DEPTH × k)``:
        candidate rows (-1 padded), their scores, and whether each lies beyond two hops. Lists
        depend only on the member, so they can be computed in any partition of the members
        (the Spark engine does) and joined before :meth:`assign`.
        """
        rows = self._check_rows(member_rows)
        # deep enough that members whose first choices are full still fill their slates
        length = PREFERENCE_DEPTH * k
        ids = np.full((len(rows), length), -1, dtype=np.int32)
        sc = np.full((len(rows), length), -np.inf, dtype=np.float32)
        out = np.zeros((len(rows), length), dtype=bool)
        for s in range(0, len(rows), batch_size):
            batch = rows[s : s + batch_size]
            pool_ids, _ = self._pool(self._state(), batch)
            scores, outside = self.score_pool(batch, pool_ids)
            got, got_scores, _ = self.reranker_.preferences(
                batch, pool_ids, scores, length, outside=outside
            )
            ids[s : s + len(batch)], sc[s : s + len(batch)] = got, got_scores
            out[s : s + len(batch)] = _gather_mask(pool_ids, outside, got)
            if progress is not None:
                progress(len(batch))
        return ids, sc, out

    def assign(
        self, member_rows, ids: np.ndarray, scores: np.ndarray, outside: np.ndarray, k: int = 20
    ) -> tuple[np.ndarray, np.ndarray]:
        """The second half of :meth:`rank_batch`: one global assignment of the preference lists.

        No member appears in more slates than their capacity (:func:`assign_with_capacity`),
        and members who keep the +1 balance take no more introductions within two hops than
        beyond. ``member_rows`` must be the whole set being ranked: capacity is shared by all.
        """
        rows = self._check_rows(member_rows)
        max_inside = plus_one_quota(ids, outside, self.reranker_.required_rows(rows), k)
        capacity = self.slate_capacity(self.network_, n_slates=len(rows), k=k)
        got, got_scores = assign_with_capacity(
            ids,
            scores,
            capacity,
            k,
            inside=~outside,
            max_inside=max_inside,
            floor_slots=self._floor_slots(k),
            floor_depth=self._floor_depth(k),
        )
        return got, _monotone(got_scores)

    def _floor_slots(self, k: int) -> int:
        """Places at the end of a slate of ``k`` given to the least exposed: the tuned (or set)
        number
        for slates of 20, scaled to ``k``; none for models saved before there were any."""
        slots = self.rerank_params_.get("floor_slots", 0) if self.rerank else 0
        return min(k - 1, int(round(slots * k / 20))) if slots else 0

    def _floor_depth(self, k: int) -> int:
        """How far down the preference list of a slate of ``k`` the least-exposed places look: the
        tuned (or set) multiple of ``k``; twice ``k`` for models saved before it was tuned."""
        return int(self.rerank_params_.get("floor_depth", 2)) * k

    def _check_rows(self, member_rows) -> np.ndarray:
        rows = np.atleast_1d(np.asarray(member_rows))
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise TypeError("member_rows must be an integer row index or a 1-d array of them")
        bad = (rows < 0) | (rows >= self.network_.n_members)
        if bad.any():
            raise IndexError(
                f"member row {int(rows[bad][0])} is outside 0..{self.network_.n_members - 1}"
            )
        return rows.astype(np.int64)

    # ------------------------------------------------------------------ explain
    def explain(
        self, member_row: int, other_rows, *, max_interests: int = 3, max_contacts: int = 3
    ) -> list[dict]:
        """Reasons for introducing ``member_row`` to each of ``other_rows``
        (:func:`recsys.explain_introductions`): the rarest shared interests, the mutual contacts
        who could make the introduction, whether it bridges communities, and a ``summary`` line.
        Nothing sensitive is read."""
        net = self.network_
        return explain_introductions(
            int(member_row),
            np.asarray(other_rows, dtype=np.int64),
            adjacency=net.adjacency,
            member_interests=net.member_interests,
            interest_weights=self.features_.interest_weights,
            degrees=self.features_.degrees,  # computed once per model, unlike Network.degrees
            communities=self.communities_,
            member_ids=net.member_ids,
            interest_names=net.interest_names,
            max_interests=max_interests,
            max_contacts=max_contacts,
        )


#: Capacity multiple of an untuned model that was given none.
DEFAULT_CAPACITY_MULTIPLE = 5.0


def _bound_groups(network: Network, attribute: str) -> np.ndarray:
    """Each member's group of a consented attribute as a bare code (undisclosed: a group of its
    own).
    """
    if attribute not in network.sensitive.columns:
        have = ", ".join(network.sensitive.columns) or "none"
        raise ValueError(
            f"bound_attribute {attribute!r} is not one of the data's sensitive attributes ({have})"
        )
    values = (
        network.sensitive[attribute]
        .astype(object)
        .where(network.sensitive[attribute].notna(), None)
    )
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes).astype(np.int16)


def _score_scale(scores: np.ndarray, *, k: int) -> float:
    """Median over members of the ``k``-th best pool score (the best they have, where fewer): the
    unit of the linear re-ranking weights."""
    if scores.size == 0:
        return 1.0
    kth = -np.partition(-scores, min(k, scores.shape[1]) - 1, axis=1)[
        :, min(k, scores.shape[1]) - 1
    ]
    kth = np.where(np.isfinite(kth), kth, np.max(scores, axis=1))
    kth = kth[np.isfinite(kth) & (kth > 0)]
    return float(np.median(kth)) if len(kth) else 1.0


def _without(pool_ids: np.ndarray, unavailable: np.ndarray) -> np.ndarray:
    """``pool_ids`` with the ``unavailable`` members dropped, the rest kept in order and -1 padded
    at the end.
    """
    drop = (pool_ids < 0) | unavailable[np.maximum(pool_ids, 0)]
    if not drop.any():
        return pool_ids
    order = np.argsort(drop, axis=1, kind="stable")
    return np.where(
        np.take_along_axis(drop, order, axis=1), -1, np.take_along_axis(pool_ids, order, axis=1)
    ).astype(pool_ids.dtype)


def _spans_one_community(adjacency, communities: np.ndarray) -> np.ndarray:
    """(n,) bool: every connection of the member is in one community (or the member has none)."""
    coo = adjacency.tocoo()
    c = communities[coo.col]
    n = adjacency.shape[0]
    lo = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
    hi = np.full(n, -1, dtype=np.int64)
    np.minimum.at(lo, coo.row, c)
    np.maximum.at(hi, coo.row, c)
    return (hi <= lo) | (hi < 0)


def _introduction_pairs(
    network: Network, features: PairFeatures
) -> tuple[np.ndarray, np.ndarray] | None:
    """Past introductions as extra training pairs: accepted ones positive, declined ones negative.

    An accepted introduction counts only when its pair is a connection of the training network:
    one that is not may be in the evaluation hold-out, which nothing fitted may see.
    """
    intro = network.introductions
    if intro is None or len(intro) == 0:
        return None
    a = intro["member_a"].to_numpy(dtype=np.int64)
    b = intro["member_b"].to_numpy(dtype=np.int64)
    accepted = intro["accepted"].to_numpy(dtype=np.int8)
    connected = np.asarray(network.adjacency[a, b]).ravel() > 0
    use = (accepted == 0) | connected
    if not use.any():
        return None
    logger.info(
        "acceptance model: %d past introductions (%d accepted)",
        int(use.sum()),
        int(accepted[use].sum()),
    )
    return features.transform(a[use], b[use]), accepted[use].astype(np.int8)
