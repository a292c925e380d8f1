"""Plus One's library: data, candidate sources, scoring, re-ranking and metrics for introductions.

It reads no argv, environment or config files and never talks to MLflow; ``training`` does that.
"""

from recsys._acceptance import (
    AcceptanceModel,
    ConstrainedAcceptanceModel,
    acceptance_from_dict,
    reciprocal,
)
from recsys._assignment import (
    PREFERENCE_DEPTH,
    PreferenceLists,
    assign_slates,
    assignment_head,
    capacity_rounds,
    plus_one_quota,
    slate_capacity,
)
from recsys._broker import (
    BrokerRanker,
    TooFewContactsError,
    assign_pairs,
    common_neighbour_broker_pairs,
    evaluate_broker,
    fill_pledges,
    rank_introductions_to_make,
)
from recsys._candidates import (
    SOURCE_BITS,
    AdamicAdarCandidates,
    ALSCandidates,
    InterestOverlapCandidates,
    PersonalizedPageRankCandidates,
    fit_als_factors,
    merge_pools,
    tfidf_interests,
)
from recsys._communities import (
    ENSEMBLE,
    co_membership,
    community_ensemble,
    detect_communities,
    evaluation_partitions,
    network_size_tier_codes,
)
from recsys._evaluation import Slates, evaluate_slates, evaluation_members, pool_recall, rank_all
from recsys._explain import explain_introductions, summarize_reasons
from recsys._fair_ranking import adjusted_alpha, fair_select, mtable
from recsys._features import FEATURE_NAMES, features_from_overlaps
from recsys._frontier import bisect_price, frontier_at, priced_slates
from recsys._io import atomic_write, make_staging_dir, publish_dir, write_frame
from recsys._limits import MAX_POOL_SIZE, MAX_SLATE_SIZE, check_slate_size
from recsys._migrations import FORMAT_VERSION
from recsys._model import IntroductionRecommender
from recsys._persist import (
    ModelFormatError,
    load_model,
    read_model_manifest,
    save_model,
    verify_model_dir,
    write_model_dir,
)
from recsys._rerank import (
    BridgeBonusReranker,
    SlateReranker,
    gather_mask,
    plus_one_select,
    prefix_bounds_select,
    top_k,
)
from recsys._scoring import PairFeatures
from recsys._simulation import (
    AcceptanceBehaviour,
    RoundOutcome,
    SimulationResult,
    simulate_feedback_loop,
)
from recsys._split import heldout_matrix, holdout_split
from recsys._state import FittedState, RerankSetting
from recsys._synthetic import generate_tables, write_synthetic
from recsys._trees import GradientBoostedAcceptanceModel
from recsys.data import (
    DataValidationError,
    Network,
    load_network,
    network_from_frames,
    read_table,
    write_tables,
)


def synthetic_network(n_members: int, *, seed: int = 0, **kwargs) -> Network:
    """The built-in synthetic network as a :class:`Network` (``gender`` is its sensitive
    attribute).

    Examples
    --------
    >>> net = synthetic_network(300, seed=0)
    >>> net.n_members
    300
    """
    tables = generate_tables(n_members, seed=seed, **kwargs)
    return network_from_frames(
        tables["members"],
        tables["interests"],
        tables["connections"],
        sensitive_attributes=("gender",),
    )


__all__ = [
    "evaluation_partitions",
    "community_ensemble",
    "co_membership",
    "ENSEMBLE",
    "simulate_feedback_loop",
    "SimulationResult",
    "RoundOutcome",
    "AcceptanceBehaviour",
    "mtable",
    "fair_select",
    "adjusted_alpha",
    "pool_recall",
    "fit_als_factors",
    "SOURCE_BITS",
    "ALSCandidates",
    "AcceptanceModel",
    "AdamicAdarCandidates",
    "BridgeBonusReranker",
    "BrokerRanker",
    "ConstrainedAcceptanceModel",
    "DataValidationError",
    "FEATURE_NAMES",
    "FORMAT_VERSION",
    "FittedState",
    "GradientBoostedAcceptanceModel",
    "MAX_POOL_SIZE",
    "MAX_SLATE_SIZE",
    "InterestOverlapCandidates",
    "IntroductionRecommender",
    "PersonalizedPageRankCandidates",
    "ModelFormatError",
    "Network",
    "PREFERENCE_DEPTH",
    "PairFeatures",
    "PreferenceLists",
    "RerankSetting",
    "SlateReranker",
    "Slates",
    "TooFewContactsError",
    "acceptance_from_dict",
    "assign_pairs",
    "assign_slates",
    "assignment_head",
    "atomic_write",
    "capacity_rounds",
    "bisect_price",
    "check_slate_size",
    "common_neighbour_broker_pairs",
    "detect_communities",
    "evaluate_broker",
    "evaluate_slates",
    "evaluation_members",
    "explain_introductions",
    "features_from_overlaps",
    "fill_pledges",
    "frontier_at",
    "gather_mask",
    "generate_tables",
    "heldout_matrix",
    "holdout_split",
    "load_model",
    "load_network",
    "make_staging_dir",
    "merge_pools",
    "network_from_frames",
    "network_size_tier_codes",
    "plus_one_quota",
    "plus_one_select",
    "prefix_bounds_select",
    "priced_slates",
    "publish_dir",
    "rank_all",
    "rank_introductions_to_make",
    "read_model_manifest",
    "read_table",
    "reciprocal",
    "save_model",
    "slate_capacity",
    "summarize_reasons",
    "synthetic_network",
    "tfidf_interests",
    "top_k",
    "verify_model_dir",
    "write_frame",
    "write_model_dir",
    "write_synthetic",
    "write_tables",
]
