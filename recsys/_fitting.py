"""The parts a fitted model is built from, and the pieces of ``fit`` that are not the estimator.

:class:`Runtime` is what ranking needs besides the :class:`recsys._state.FittedState`: the
candidate sources, the pair features and the slate re-ranker, all rebuilt from the state
(after ``fit``, after loading a saved model, after a graph-only refresh). The functions below
make the acceptance model's training pairs and the re-ranker's inputs.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from recsys._acceptance import AcceptanceModel, ConstrainedAcceptanceModel
from recsys._assignment import slate_capacity
from recsys._candidates import (
    AdamicAdarCandidates,
    ALSCandidates,
    InterestOverlapCandidates,
    PersonalizedPageRankCandidates,
    fit_als_factors,
    merge_pools,
    tfidf_interests,
)
from recsys._communities import TIER_NAMES, network_size_tier_codes
from recsys._features import FEATURE_NAMES
from recsys._rerank import SlateReranker
from recsys._scoring import PairFeatures
from recsys._split import heldout_matrix
from recsys._state import FittedState, RerankSetting
from recsys._trees import GradientBoostedAcceptanceModel
from recsys._tuning import DEFAULT_TARGETS, Validation, tune_reranker
from recsys.data import Network

__all__ = [
    "Runtime",
    "bound_group_codes",
    "build_features",
    "build_runtime",
    "build_sources",
    "fit_acceptance",
    "fit_member_factors",
    "initial_setting",
    "introduction_pairs",
    "make_reranker",
    "merged_pool",
    "score_scale",
    "spans_one_community",
    "training_pairs",
    "fixed_setting",
    "tune_setting",
    "without",
]

logger = logging.getLogger(__name__)


class Runtime(NamedTuple):
    """What ranking reads besides the fitted state: the candidate sources, pair features and
    re-ranker, and the hyper-parameters ranking uses, as they were when the state was taken
    (changing a hyper-parameter afterwards changes nothing until the next fit)."""

    sources: dict[str, Any]
    features: PairFeatures
    reranker: SlateReranker
    pool_size: int
    source_sizes: dict[str, int]
    reciprocal: str
    rerank: bool
    slate_size: int
    params: dict[str, Any]


def build_runtime(params: dict[str, Any], state: FittedState) -> Runtime:
    """Candidate sources, pair features and the re-ranker of ``state``, with the estimator's
    hyper-parameters ``params`` (as :meth:`get_params` gives them)."""
    network = state.network
    sources = build_sources(params, network, state.member_factors, state.als_index)
    features = build_features(
        network,
        state.member_factors,
        state.communities,
        community_feature=params["community_feature"],
    )
    reranker = make_reranker(
        network,
        state.communities,
        state.rerank,
        plus_one=params["plus_one"],
        bound_groups=state.bound_groups,
        ensemble=state.community_ensemble,
    )
    sizes = {name: int(params[f"n_{name}"]) for name in ("adamic_adar", "interests", "als", "ppr")}
    return Runtime(
        sources=sources,
        features=features,
        reranker=reranker,
        pool_size=int(params["pool_size"]),
        source_sizes=sizes,
        reciprocal=params["reciprocal"],
        rerank=bool(params["rerank"]),
        slate_size=int(params["slate_size"]),
        params=dict(params),
    )


def build_sources(
    params: dict[str, Any],
    network: Network,
    member_factors: np.ndarray,
    als_index: np.ndarray | None,
) -> dict[str, Any]:
    """The candidate sources ``params`` switch on, fitted on ``network`` (the ALS source from
    given embeddings and, where saved, its search index)."""
    sources: dict[str, Any] = {}
    if params["n_adamic_adar"]:
        sources["adamic_adar"] = AdamicAdarCandidates(
            three_hop_weight=params["three_hop_weight"],
            three_hop_middles=params["three_hop_middles"],
        ).fit(network)
    if params["n_interests"]:
        sources["interests"] = InterestOverlapCandidates(max_df=params["interest_max_df"]).fit(
            network
        )
    if params["n_als"]:
        sources["als"] = ALSCandidates(
            index=params["als_index"], random_state=params["random_state"]
        ).set_factors(network, member_factors, als_index)
    if params["n_ppr"]:
        sources["ppr"] = PersonalizedPageRankCandidates().fit(network)
    return sources


def build_features(
    network: Network,
    member_factors: np.ndarray,
    communities: np.ndarray,
    *,
    community_feature: bool,
) -> PairFeatures:
    """Pair features over ``network``. Without ``community_feature`` the ``same_community``
    column is the same for every pair (one community for all), so the acceptance model cannot
    learn to keep members inside their community."""
    return PairFeatures(
        adjacency=network.adjacency,
        member_interests=network.member_interests,
        interest_weights=tfidf_interests(network.member_interests),
        member_factors=member_factors,
        communities=communities if community_feature else np.zeros_like(communities),
    )


def make_reranker(
    network: Network,
    communities: np.ndarray,
    setting: RerankSetting,
    *,
    plus_one: str,
    bound_groups: np.ndarray | None = None,
    ensemble: np.ndarray | None = None,
) -> SlateReranker:
    """The slate re-ranker of ``setting``: the bridge bonus on ``ensemble`` (n, M) when given,
    else on ``communities``; exposure bounds on network-size tiers (or, opted in, on the bound
    attribute's groups), target = population shares."""
    degrees = network.degrees
    if bound_groups is None:
        groups = network_size_tier_codes(degrees)
        shares = np.bincount(groups, minlength=len(TIER_NAMES)) / max(len(groups), 1)
    else:
        groups = bound_groups
        shares = np.bincount(groups) / max(len(groups), 1)
    return SlateReranker(
        bridge_weight=setting.bridge_weight,
        degree_penalty=setting.degree_penalty,
        bound_tolerance=setting.bound_tolerance,
        plus_one=plus_one,
        bonus=setting.bonus,
        score_scale=setting.score_scale,
    ).fit(
        communities=communities if ensemble is None else ensemble,
        degrees=degrees,
        member_spans_one_community=spans_one_community(network.adjacency, communities),
        pledged=network.bool_attribute("plus_one", default=False),
        group_codes=groups,
        group_shares=shares,
    )


def merged_pool(
    sources: dict[str, Any], sizes: dict[str, int], member_rows: np.ndarray, pool_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every source's candidates merged into one pool: ids and source bits (R, pool_size)."""
    found = {name: src.candidates(member_rows, sizes[name]) for name, src in sources.items()}
    return merge_pools(found, pool_size=pool_size)


def training_pairs(
    inner_train: Network,
    inner_val: np.ndarray,
    *,
    pool,
    features: PairFeatures,
    max_members: int,
    rng: np.random.Generator,
    batch_size: int = 2000,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Pools of members with split-off connections: pooled split-off pairs are positives.

    ``pool(rows)`` gives the merged pools on ``inner_train``. Returns the features and labels
    of every positive and a seeded sample of negatives (at most 30 per positive), and the
    pools themselves (``rows``, ``ids``, and the ``features`` of every valid entry, row-major)
    for tuning the re-ranker.
    """
    members = np.unique(inner_val.ravel())
    if len(members) > max_members:
        members = np.sort(rng.choice(members, max_members, replace=False))
    members = members.astype(np.int64)
    ids_parts, feature_parts = [], []
    for start in range(0, len(members), batch_size):  # batches bound the three-hop matrices
        batch = members[start : start + batch_size]
        batch_ids, _ = pool(batch)
        rb, jb = np.nonzero(batch_ids >= 0)
        feature_parts.append(features.transform(batch[rb], batch_ids[rb, jb]))
        ids_parts.append(batch_ids)
    ids = np.vstack(ids_parts)
    all_features = np.vstack(feature_parts)  # row-major over the batches: np.nonzero(ids) order
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
    neg = np.flatnonzero(labels == 0)
    max_neg = max(30 * int(labels.sum()), 1000)
    if len(neg) > max_neg:
        neg = rng.choice(neg, max_neg, replace=False)
    keep = np.sort(np.concatenate([np.flatnonzero(labels == 1), neg]))
    logger.info("acceptance model: %d pairs, %d positives", len(keep), int(labels[keep].sum()))
    pools = {"rows": members, "ids": ids, "features": all_features}
    return all_features[keep], labels[keep], pools


def introduction_pairs(
    network: Network, features: PairFeatures
) -> tuple[np.ndarray, np.ndarray] | None:
    """Past introductions as extra training pairs: accepted ones positive, declined ones
    negative.

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


def score_scale(scores: np.ndarray, *, k: int) -> float:
    """Median over members of the ``k``-th best pool score (the best they have, where fewer):
    the unit of the linear re-ranking weights."""
    if scores.size == 0:
        return 1.0
    kk = min(k, scores.shape[1]) - 1
    kth = -np.partition(-scores, kk, axis=1)[:, kk]
    kth = np.where(np.isfinite(kth), kth, np.max(scores, axis=1))
    kth = kth[np.isfinite(kth) & (kth > 0)]
    return float(np.median(kth)) if len(kth) else 1.0


def bound_group_codes(network: Network, attribute: str) -> np.ndarray:
    """Each member's group of a consented attribute as a bare code (undisclosed: a group of its
    own)."""
    if attribute not in network.sensitive.columns:
        have = ", ".join(network.sensitive.columns) or "none"
        raise ValueError(
            f"bound_attribute {attribute!r} is not one of the data's sensitive attributes ({have})"
        )
    column = network.sensitive[attribute]
    values = column.astype(object).where(column.notna(), None)
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    return np.where(codes < 0, len(uniques), codes).astype(np.int16)


def spans_one_community(adjacency, communities: np.ndarray) -> np.ndarray:
    """(n,) bool: every connection of the member is in one community (or the member has none)."""
    coo = adjacency.tocoo()
    c = communities[coo.col]
    n = adjacency.shape[0]
    lo = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
    hi = np.full(n, -1, dtype=np.int64)
    np.minimum.at(lo, coo.row, c)
    np.maximum.at(hi, coo.row, c)
    return (hi <= lo) | (hi < 0)


def without(pool_ids: np.ndarray, unavailable: np.ndarray) -> np.ndarray:
    """``pool_ids`` with the ``unavailable`` members dropped, the rest kept in order and -1
    padded at the end."""
    drop = (pool_ids < 0) | unavailable[np.maximum(pool_ids, 0)]
    if not drop.any():
        return pool_ids
    order = np.argsort(drop, axis=1, kind="stable")
    kept = np.take_along_axis(pool_ids, order, axis=1)
    return np.where(np.take_along_axis(drop, order, axis=1), -1, kept).astype(pool_ids.dtype)


#: Capacity multiple of an untuned model that was given none.
DEFAULT_CAPACITY_MULTIPLE = 5.0


def fit_member_factors(
    params: dict[str, Any], network: Network, given: np.ndarray | None
) -> np.ndarray:
    """The interest embeddings: implicit's ALS with the estimator's parameters, or ``given``
    (embeddings fitted elsewhere, e.g. MLlib on Spark) after checking their shape."""
    if given is None:
        return fit_als_factors(
            network.member_interests,
            factors=params["als_factors"],
            iterations=params["als_iterations"],
            regularization=params["als_regularization"],
            alpha=params["als_alpha"],
            random_state=params["random_state"]
            if params["als_seed"] is None
            else params["als_seed"],
        )
    factors = np.ascontiguousarray(given, dtype=np.float32)
    if factors.shape != (network.n_members, params["als_factors"]):
        raise ValueError(
            f"member_factors has shape {factors.shape}; this network and model need "
            f"({network.n_members}, {params['als_factors']})"
        )
    return factors


def fit_acceptance(
    fairness: str,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    model: str = "logistic",
    random_state: int = 0,
):
    """The acceptance model, plain or under a fairlearn constraint across same/cross-community
    pairs (structural: no sensitive attribute); ``model="gradient_boosting"`` fits the trees of
    :class:`recsys.GradientBoostedAcceptanceModel` instead of the logistic model."""
    if model == "gradient_boosting":
        if fairness != "none":
            raise ValueError("fairness constraints train the logistic acceptance model only")
        return GradientBoostedAcceptanceModel(random_state=random_state).fit(features, labels)
    if fairness == "none":
        return AcceptanceModel().fit(features, labels)
    same = features[:, FEATURE_NAMES.index("same_community")] > 0
    return ConstrainedAcceptanceModel(constraint=fairness).fit(
        features, labels, sensitive_features=np.where(same, "same", "cross")
    )


def _opt_in_tolerance(params: dict[str, Any]) -> float:
    return 0.1 if params["bound_tolerance"] is None else params["bound_tolerance"]


def initial_setting(params: dict[str, Any], scores: np.ndarray) -> RerankSetting:
    """The re-ranker setting the parameters give, before tuning; ``scores`` (the validation
    pools') give its unit."""
    multiple = params["capacity_multiple"]
    return RerankSetting(
        bridge_weight=params["bridge_weight"],
        degree_penalty=params["degree_penalty"],
        bound_tolerance=(
            _opt_in_tolerance(params) if params["bound_attribute"] else params["bound_tolerance"]
        ),
        capacity_multiple=DEFAULT_CAPACITY_MULTIPLE if multiple is None else multiple,
        floor_slots=params["floor_slots"] or 0,
        floor_depth=params["floor_depth"] or 2,
        bonus="linear",
        score_scale=score_scale(scores, k=params["slate_size"]),
    )


def fixed_setting(params: dict[str, Any]) -> dict:
    """The re-ranker settings the parameters fix, which tuning leaves as they are."""
    fixed = {
        name: params[name]
        for name in ("capacity_multiple", "floor_slots", "floor_depth")
        if params[name] is not None
    }
    # bounds on a consented attribute were asked for: kept, never tuned away
    fixed["bound_tolerance"] = _opt_in_tolerance(params) if params["bound_attribute"] else None
    return fixed


def tune_setting(
    params: dict[str, Any],
    setting: RerankSetting,
    *,
    network: Network,
    heldout: np.ndarray,
    communities: np.ndarray,
    pools: dict[str, np.ndarray],
    scores: np.ndarray,
    outside: np.ndarray,
    bound_groups: np.ndarray | None,
    ensemble: np.ndarray | None = None,
) -> tuple[RerankSetting, dict]:
    """``setting`` tuned on the validation pools of ``network`` (the inner training graph) and
    its split-off ``heldout`` connections (:func:`recsys._tuning.tune_reranker`)."""
    rows = pools["rows"]
    k = params["slate_size"]

    def make(changes: dict) -> SlateReranker:
        return make_reranker(
            network,
            communities,
            setting.replace(**changes),
            plus_one=params["plus_one"],
            bound_groups=bound_groups,
            ensemble=ensemble,
        )

    validation = Validation(
        member_rows=rows,
        pool_ids=pools["ids"],
        scores=scores,
        outside=outside,
        relevant=heldout_matrix(heldout, network.n_members)[rows],
        communities=communities if ensemble is None else ensemble,
        sensitive=network.sensitive,
        tiers=network_size_tier_codes(network.degrees),
        # the peer: plain Adamic-Adar slates of the same members on the same graph
        peer_ids=AdamicAdarCandidates().fit(network).candidates(rows, k)[0],
        capacity=lambda multiple: slate_capacity(
            network, n_slates=len(rows), k=k, multiple=multiple
        ),
        k=k,
        tiebreak=network.degrees,
    )
    tuned, report = tune_reranker(
        make,
        validation,
        targets={**DEFAULT_TARGETS, **(params["rerank_targets"] or {})},
        fixed=fixed_setting(params),
        random_state=params["random_state"],
    )
    return setting.replace(**tuned), report
