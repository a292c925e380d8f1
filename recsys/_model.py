"""The introduction recommender: candidate pool → reciprocal acceptance score → re-ranked
slate."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator

from recsys._assignment import PREFERENCE_DEPTH, PreferenceLists, assign_slates, slate_capacity
from recsys._communities import ENSEMBLE, community_ensemble
from recsys._evaluation import rank_all
from recsys._explain import explain_introductions
from recsys._fitted import require_fitted
from recsys._fitting import (
    bound_group_codes,
    build_features,
    build_runtime,
    build_sources,
    fit_acceptance,
    fit_member_factors,
    initial_setting,
    introduction_pairs,
    merged_pool,
    training_pairs,
    tune_setting,
    without,
)
from recsys._limits import MAX_POOL_SIZE, check_slate_size
from recsys._rerank import top_k
from recsys._scoring import pool_scores_from_features
from recsys._split import holdout_split
from recsys._state import FittedState
from recsys.data import Network

__all__ = ["IntroductionRecommender"]

logger = logging.getLogger(__name__)


class IntroductionRecommender(BaseEstimator):
    """Who should meet whom: the whole pipeline as one estimator.

    ``fit(network)`` learns from the training network: communities (Leiden), ALS member
    embeddings over interests, the candidate sources, and an acceptance model trained on
    connections split off *inside* the training network (never the evaluation hold-out).
    ``rank(member_rows, k)`` returns slates for a batch of members. Everything ``fit`` learns
    is one frozen :class:`recsys.FittedState` (``state_``, what a saved model holds); changing a
    hyper-parameter after ``fit`` changes nothing until the next ``fit``. Re-ranking is chosen
    per call (``rank(..., rerank=False)``), and :meth:`with_setting` gives a copy that ranks
    with another re-ranker setting.

    Parameters
    ----------
    pool_size : int
        Candidates kept per member after merging the sources.
    n_adamic_adar, n_interests, n_als, n_ppr : int
        Candidates asked of each source (0 switches a source off). ``n_ppr`` asks personalized
        PageRank by a local push (:class:`PersonalizedPageRankCandidates`, α = 0.15,
        ε = 1e-4), which reaches past three hops; off by default.
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
    acceptance : {"logistic", "gradient_boosting"}
        The acceptance model: logistic regression with pairwise interactions
        (:class:`recsys.AcceptanceModel`) or gradient-boosted trees
        (:class:`recsys.GradientBoostedAcceptanceModel`; not with ``fairness``).
    reciprocal : {"harmonic", "product", "none"}
        How the two directions' acceptance probabilities combine.
    validation_fraction : float
        Share of training connections split off to train the acceptance model.
    max_training_members : int
        At most this many members' pools train the acceptance model.
    rerank : bool
        ``False``: rank by the acceptance score alone by default (the unconstrained baseline),
        and do not tune the re-ranker.
    slate_size : int
        The slate length the re-ranker is tuned for (``evaluation.k``), and ``rank``'s default
        ``k``.
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
        Places at the end of a slate of ``slate_size`` (scaled to other k) given to the least
        exposed of the member's candidates (:func:`recsys.assign_slates`). ``None`` tunes it,
        else it is fixed (untuned: 0).
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
    community_feature : bool
        Whether the acceptance model sees ``same_community``. Off by default: trained on it,
        the model learns that members connect inside their community and ranks bridges lower,
        which the re-ranker must then pay to undo (on Deezer the feature bought 0.5% of recall
        and cost 12% of the bridges of ranking by score alone, measured against Adamic-Adar).
    community_partitions : int
        Partitions in the community ensemble the bridge bonus pays on (1 to
        ``len(recsys.ENSEMBLE)``; 1: the model's one Leiden partition alone).
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
        n_ppr: int = 0,
        interest_max_df: float = 0.05,
        als_factors: int = 32,
        als_iterations: int = 15,
        als_regularization: float = 0.05,
        als_alpha: float = 2.0,
        als_index: Literal["auto", "exact", "hnsw", "ivf"] = "auto",
        als_seed: int | None = None,
        acceptance: Literal["logistic", "gradient_boosting"] = "logistic",
        reciprocal: Literal["harmonic", "product", "none"] = "harmonic",
        validation_fraction: float = 0.2,
        max_training_members: int = 20000,
        rerank: bool = True,
        slate_size: int = 20,
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
        community_feature: bool = False,
        community_partitions: int = 5,
        random_state: int = 0,
    ):
        self.pool_size = pool_size
        self.n_adamic_adar = n_adamic_adar
        self.three_hop_weight = three_hop_weight
        self.three_hop_middles = three_hop_middles
        self.n_interests = n_interests
        self.n_als = n_als
        self.n_ppr = n_ppr
        self.interest_max_df = interest_max_df
        self.als_factors = als_factors
        self.als_iterations = als_iterations
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.als_seed = als_seed
        self.als_index = als_index
        self.acceptance = acceptance
        self.reciprocal = reciprocal
        self.validation_fraction = validation_fraction
        self.max_training_members = max_training_members
        self.rerank = rerank
        self.slate_size = slate_size
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
        self.community_feature = community_feature
        self.community_partitions = community_partitions
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        network: Network,
        *,
        progress: Callable[[str], None] | None = None,
        member_factors: np.ndarray | None = None,
    ) -> IntroductionRecommender:
        """Learn everything from ``network`` (the training graph); ``progress(step)`` is called
        per stage.

        ``member_factors`` (n_members, als_factors) replaces implicit's ALS with embeddings
        fitted elsewhere (MLlib ALS on Spark: ``candidates.als.engine: spark``).
        """
        step = progress or (lambda name: None)
        self._check_params()
        params = self.get_params()
        bound_groups = (
            bound_group_codes(network, self.bound_attribute) if self.bound_attribute else None
        )
        step("embeddings")
        factors = fit_member_factors(params, network, member_factors)

        step("acceptance model")
        # the acceptance model and the re-ranker learn on connections split off inside the
        # training graph: never the evaluation hold-out
        inner_train, inner_val = holdout_split(
            network, fraction=self.validation_fraction, seed=self.random_state + 1
        )
        inner_ensemble = self._ensemble(inner_train)
        inner_communities = inner_ensemble[:, 0].copy()
        inner_sources = build_sources(params, inner_train, factors, None)
        inner_features = build_features(
            inner_train, factors, inner_communities, community_feature=self.community_feature
        )
        features, labels, pools = training_pairs(
            inner_train,
            inner_val,
            pool=lambda rows: merged_pool(
                inner_sources, self._source_sizes(), rows, self.pool_size
            ),
            features=inner_features,
            max_members=self.max_training_members,
            rng=np.random.default_rng(self.random_state),
        )
        extra = introduction_pairs(network, inner_features)
        if extra is not None:
            features, labels = np.vstack([features, extra[0]]), np.concatenate([labels, extra[1]])
        acceptance = fit_acceptance(
            self.fairness,
            features,
            labels,
            model=self.acceptance,
            random_state=self.random_state,
        )
        scores, outside = pool_scores_from_features(
            pools["ids"], pools["features"], acceptance, how=self.reciprocal
        )
        setting = initial_setting(params, scores)
        report: dict = {"tuned": False}
        if self.rerank and self.tune_rerank:
            step("tuning the re-ranker")
            setting, report = tune_setting(
                params,
                setting,
                network=inner_train,
                heldout=inner_val,
                communities=inner_communities,
                pools=pools,
                scores=scores,
                outside=outside,
                bound_groups=bound_groups,
                ensemble=inner_ensemble if self.community_partitions > 1 else None,
            )

        step("communities and sources")
        # the interest embeddings are the same for both graphs: reuse the inner search index
        als = inner_sources.get("als")
        ensemble = self._ensemble(network)
        state = FittedState(
            network=network,
            communities=ensemble[:, 0].copy(),
            community_ensemble=ensemble if self.community_partitions > 1 else None,
            member_factors=factors,
            als_index=als.index_bytes() if als is not None else None,
            acceptance=acceptance,
            rerank=setting,
            rerank_report=report,
            bound_groups=bound_groups,
            training_pairs=int(len(labels)),
            training_positives=int(labels.sum()),
        )
        self._use_state(state)
        return self

    def _ensemble(self, network: Network) -> np.ndarray:
        """(n, community_partitions) labels; column 0 is the model's own partition."""
        return community_ensemble(
            network.adjacency,
            partitions=ENSEMBLE[: self.community_partitions],
            random_state=self.random_state,
        )

    def _check_params(self) -> None:
        # bounded (recsys._limits): a pool or a slate is allocated per member ranked
        for name in ("pool_size", "n_adamic_adar", "n_interests", "n_als", "n_ppr"):
            value, low = getattr(self, name), int(name == "pool_size")
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or not low <= value <= MAX_POOL_SIZE
            ):
                raise ValueError(
                    f"{name} must be a whole number in {low}..{MAX_POOL_SIZE}, got {value!r}"
                )
        check_slate_size(self.slate_size, name="slate_size")
        if not 1 <= self.community_partitions <= len(ENSEMBLE):
            raise ValueError(
                f"community_partitions must be between 1 and {len(ENSEMBLE)}, "
                f"got {self.community_partitions}"
            )
        if self.floor_depth is not None and not 2 <= self.floor_depth <= PREFERENCE_DEPTH:
            raise ValueError(
                f"floor_depth must be between 2 and {PREFERENCE_DEPTH} (times k), got "
                f"{self.floor_depth}"
            )
        if self.n_adamic_adar + self.n_interests + self.n_als + self.n_ppr == 0:
            raise ValueError("at least one candidate source needs n > 0")
        if self.acceptance not in ("logistic", "gradient_boosting"):
            raise ValueError(
                f"acceptance must be 'logistic' or 'gradient_boosting', got {self.acceptance!r}"
            )
        if self.acceptance == "gradient_boosting" and self.fairness != "none":
            raise ValueError("fairness constraints train the logistic acceptance model only")

    def _source_sizes(self) -> dict[str, int]:
        return {
            "adamic_adar": self.n_adamic_adar,
            "interests": self.n_interests,
            "als": self.n_als,
            "ppr": self.n_ppr,
        }

    # ------------------------------------------------------------------ the fitted state
    def _use_state(self, state: FittedState) -> None:
        """Take ``state`` as the fitted state and build what ranking reads from it."""
        runtime = build_runtime(self.get_params(), state)
        self.state_ = state
        self.runtime_ = runtime

    @classmethod
    def from_state(
        cls, state: FittedState, *, manifest: dict | None = None, **params: Any
    ) -> IntroductionRecommender:
        """A fitted model from a :class:`recsys.FittedState` and hyper-parameters (what
        :func:`recsys.load_model` does with a saved model; ``manifest`` is kept as
        ``manifest_``)."""
        model = cls(**params)
        model._check_params()  # a saved model's parameters are checked as fit checks them
        model._use_state(state)
        if manifest is not None:
            model.manifest_ = manifest
        return model

    def with_setting(
        self, *, rerank: bool | None = None, plus_one: str | None = None, **changes: Any
    ) -> IntroductionRecommender:
        """A copy of this fitted model that ranks with another re-ranker setting: ``rerank`` and
        ``plus_one`` as the hyper-parameters of that name, ``changes`` as fields of
        :class:`recsys.RerankSetting` (``floor_slots=4``, ``capacity_multiple=2.0``, ...). The
        arrays are shared, nothing is refitted, and this model is unchanged."""
        params = dict(self._ready().params)  # as fitted, whatever set_params did since
        if rerank is not None:
            params["rerank"] = rerank
        if plus_one is not None:
            params["plus_one"] = plus_one
        state = self.state_.replace(rerank=self.state_.rerank.replace(**changes))
        return type(self).from_state(state, manifest=getattr(self, "manifest_", None), **params)

    def refit_graph(self, network: Network) -> IntroductionRecommender:
        """A copy refreshed on a grown ``network`` of the same members: communities detected
        again, graph sources and pair features rebuilt; the interest embeddings, the acceptance
        model and the re-ranker setting are kept (what a feedback-loop simulation does between
        rounds)."""
        require_fitted(self, "state_")
        if network.n_members != self.state_.network.n_members:
            raise ValueError(
                f"refit_graph keeps the members: the model has {self.state_.network.n_members}, "
                f"the network {network.n_members}"
            )
        ensemble = self._ensemble(network)
        state = self.state_.replace(
            network=network,
            communities=ensemble[:, 0].copy(),
            community_ensemble=ensemble if self.community_partitions > 1 else None,
            als_index=None,
        )
        return type(self).from_state(state, **self._ready().params)

    # read-only views of the fitted state and what ranking builds from it
    sources_ = property(lambda self: self._ready().sources, doc="The candidate sources.")
    features_ = property(lambda self: self._ready().features, doc="Pair features (PairFeatures).")
    reranker_ = property(lambda self: self._ready().reranker, doc="The slate re-ranker.")
    network_ = property(lambda self: self._fitted().network, doc="The training graph.")
    communities_ = property(lambda self: self._fitted().communities)
    member_factors_ = property(lambda self: self._fitted().member_factors)
    acceptance_ = property(lambda self: self._fitted().acceptance)
    bound_groups_ = property(lambda self: self._fitted().bound_groups)
    rerank_report_ = property(lambda self: self._fitted().rerank_report)
    n_training_pairs_ = property(lambda self: self._fitted().training_pairs)
    n_training_positives_ = property(lambda self: self._fitted().training_positives)

    @property
    def rerank_params_(self) -> Mapping[str, Any]:
        """The re-ranker setting the model ranks with, read-only (:class:`RerankSetting`)."""
        return MappingProxyType(self._fitted().rerank.to_dict())

    def _fitted(self) -> FittedState:
        require_fitted(self, "state_")
        return self.state_

    def _ready(self):
        require_fitted(self, "runtime_")
        return self.runtime_

    # ------------------------------------------------------------------ rank
    def pool(self, member_rows) -> tuple[np.ndarray, np.ndarray]:
        """Merged candidate pool: ``ids`` (R, pool_size) int32 and ``source_bits`` (R,
        pool_size) uint8."""
        rows = self._check_rows(member_rows)
        run = self._ready()
        return merged_pool(run.sources, run.source_sizes, rows, run.pool_size)

    def score_pool(self, member_rows, pool_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reciprocal acceptance score (R, P) float32 (-inf at padding) and the outside mask (R,
        P) bool."""
        rows = self._check_rows(member_rows)
        run = self._ready()
        return run.features.score_pools(rows, pool_ids, self.acceptance_, how=run.reciprocal)

    def rank(
        self,
        member_rows,
        k: int | None = None,
        *,
        rerank: bool | None = None,
        unavailable: np.ndarray | None = None,
        exposure: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slates for a batch of members.

        Parameters
        ----------
        member_rows : int or array-like of int, shape (R,)
        k : int, optional
            Slate size (default: ``slate_size``).
        rerank : bool, optional
            Re-rank this call's slates (default: the ``rerank`` parameter).
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
        k = self._check_k(k)
        rows = self._check_rows(member_rows)
        pool_ids, _ = self.pool(rows)
        if unavailable is not None:
            pool_ids = without(pool_ids, self._member_mask(unavailable, "unavailable"))
        scores, outside = self.score_pool(rows, pool_ids)
        if not (self._ready().rerank if rerank is None else rerank):
            return top_k(pool_ids, scores, k)
        floor = self._floor_slots(k) if exposure is not None else 0
        if not floor:
            return self.reranker_.rerank(rows, pool_ids, scores, k, outside=outside)
        exposure = np.asarray(exposure, dtype=np.float64)
        if exposure.shape != (self.network_.n_members,):
            raise ValueError(
                f"exposure must have one entry per member ({self.network_.n_members}), got shape "
                f"{exposure.shape}"
            )
        depth = self._floor_depth(k)
        head = self.reranker_.rerank(rows, pool_ids, scores, k - floor, outside=outside)
        prefs = self.reranker_.preferences(rows, pool_ids, scores, depth, outside=outside)
        required = self.reranker_.required_rows(rows)
        return assign_slates(
            prefs,
            k=k,
            capacity=np.inf,
            required=required,
            floor_slots=floor,
            floor_depth=depth,
            exposure=exposure,
            tiebreak=self.floor_tiebreak(),
            head=head,
        )

    def rank_batch(
        self,
        member_rows,
        k: int | None = None,
        *,
        rerank: bool | None = None,
        batch_size: int = 4000,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slates for many members at once, with recipient capacity held across all of them.

        Each member's pool is re-ranked into a preference list of ``PREFERENCE_DEPTH × k``; then
        one global assignment (:func:`recsys.assign_slates`) fills the slates so that no member
        appears in more slates than their capacity, and members who keep the +1 balance take no
        more introductions within two hops than beyond. Without re-ranking this is
        :meth:`rank`.
        """
        k = self._check_k(k)
        rows = self._check_rows(member_rows)
        if not (self._ready().rerank if rerank is None else rerank):
            plain = functools.partial(self.rank, rerank=False)
            slates = rank_all(plain, rows, k=k, batch_size=batch_size, progress=progress)
            return slates.ids, slates.scores
        prefs = self.preference_lists(rows, k, batch_size=batch_size, progress=progress)
        return self.assign(rows, *prefs, k)

    def preference_lists(
        self,
        member_rows,
        k: int | None = None,
        *,
        batch_size: int = 4000,
        progress: Callable[[int], None] | None = None,
    ) -> PreferenceLists:
        """The first half of :meth:`rank_batch`: each member's re-ranked preference list.

        Returns :class:`recsys.PreferenceLists` ``(ids, scores, outside)`` of shape
        ``(len(member_rows), PREFERENCE_DEPTH × k)``. Lists depend only on the member, so they
        can be computed in any partition of the members (the Spark engine does) and joined
        before :meth:`assign`.
        """
        k = self._check_k(k)
        rows = self._check_rows(member_rows)
        # deep enough that members whose first choices are full still fill their slates
        length = PREFERENCE_DEPTH * k
        ids = np.full((len(rows), length), -1, dtype=np.int32)
        sc = np.full((len(rows), length), -np.inf, dtype=np.float32)
        out = np.zeros((len(rows), length), dtype=bool)
        for s in range(0, len(rows), batch_size):
            batch = rows[s : s + batch_size]
            pool_ids, _ = self.pool(batch)
            scores, outside = self.score_pool(batch, pool_ids)
            part = slice(s, s + len(batch))
            ids[part], sc[part], out[part] = self.reranker_.preferences(
                batch, pool_ids, scores, length, outside=outside
            )
            if progress is not None:
                progress(len(batch))
        return PreferenceLists(ids, sc, out)

    def assign(
        self,
        member_rows,
        ids: np.ndarray,
        scores: np.ndarray,
        outside: np.ndarray,
        k: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The second half of :meth:`rank_batch`: one global assignment of the preference lists
        (:func:`recsys.assign_slates`) with the model's capacity, +1 balance and least-exposed
        places. ``member_rows`` must be the whole set being ranked: capacity is shared by all.
        """
        k = self._check_k(k)
        rows = self._check_rows(member_rows)
        return assign_slates(
            PreferenceLists(ids, scores, outside),
            k=k,
            capacity=self.slate_capacity(self.network_, n_slates=len(rows), k=k),
            required=self.reranker_.required_rows(rows),
            floor_slots=self._floor_slots(k),
            floor_depth=self._floor_depth(k),
            tiebreak=self.floor_tiebreak(),
        )

    def slate_capacity(
        self, network: Network, *, n_slates: int, k: int, multiple: float | None = None
    ) -> np.ndarray:
        """Slates each member may appear in, for a batch of ``n_slates`` slates of ``k``
        (:func:`recsys.slate_capacity`); ``multiple`` defaults to the fitted setting's."""
        if multiple is None:
            multiple = self._fitted().rerank.capacity_multiple
        return slate_capacity(network, n_slates=n_slates, k=k, multiple=multiple)

    def floor_places(self, k: int | None = None) -> tuple[int, int]:
        """``(places, depth)``: how many of the last places of a slate of ``k`` go to the least
        exposed of the member's candidates in :meth:`assign`, and how many entries down the
        preference list they look (what a distributed assignment needs to do the same)."""
        k = self._check_k(k)
        return self._floor_slots(k), self._floor_depth(k)

    def floor_tiebreak(self) -> np.ndarray:
        """(n,) what breaks exposure ties among the candidates for a least-exposed place: each
        member's number of connections, the fewer first (what :meth:`assign` uses, and a
        distributed assignment needs to do the same)."""
        return self.features_.degrees

    def _floor_slots(self, k: int) -> int:
        """Places at the end of a slate of ``k`` given to the least exposed: the setting's
        number for slates of ``slate_size``, scaled to ``k``."""
        slots = self._fitted().rerank.floor_slots
        return min(k - 1, int(round(slots * k / self._ready().slate_size))) if slots else 0

    def _floor_depth(self, k: int) -> int:
        """How far down the preference list of a slate of ``k`` the least-exposed places look."""
        return int(self._fitted().rerank.floor_depth) * k

    def _check_k(self, k: int | None) -> int:
        # bounded before anything is allocated (recsys._limits)
        return check_slate_size(self._ready().slate_size if k is None else k)

    def _check_rows(self, member_rows) -> np.ndarray:
        n = self._fitted().network.n_members
        rows = np.atleast_1d(np.asarray(member_rows))
        if rows.ndim != 1 or (len(rows) and not np.issubdtype(rows.dtype, np.integer)):
            raise TypeError("member_rows must be an integer row index or a 1-d array of them")
        bad = (rows < 0) | (rows >= n)
        if bad.any():
            raise IndexError(f"member row {int(rows[bad][0])} is outside 0..{n - 1}")
        return rows.astype(np.int64)

    def _member_mask(self, mask: np.ndarray, name: str) -> np.ndarray:
        mask = np.asarray(mask)
        n = self.network_.n_members
        if mask.dtype != bool or mask.shape != (n,):
            raise ValueError(
                f"{name} must be a boolean array of one entry per member ({n}), "
                f"got {mask.dtype} of shape {mask.shape}"
            )
        return mask

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
