"""Plus One's library: data, candidate sources, scoring, re-ranking and metrics for introductions.

It reads no argv, environment or config files and never talks to MLflow; ``training`` does that.
"""

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
    AdamicAdarCandidates,
    ALSCandidates,
    InterestOverlapCandidates,
    merge_pools,
    tfidf_interests,
)
from recsys._communities import detect_communities, network_size_tier_codes
from recsys._evaluation import Slates, evaluate_slates, evaluation_members, rank_all
from recsys._explain import explain_introductions, summarize_reasons
from recsys._io import atomic_write, write_frame
from recsys._model import IntroductionRecommender
from recsys._persist import ModelFormatError, load_model, save_model, verify_model_dir
from recsys._rerank import BridgeBonusReranker, plus_one_select, top_k
from recsys._scoring import (
    FEATURE_NAMES,
    AcceptanceModel,
    ConstrainedAcceptanceModel,
    PairFeatures,
    acceptance_from_dict,
    reciprocal,
)
from recsys._split import heldout_matrix, holdout_split
from recsys._synthetic import generate_tables, write_synthetic
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
    "ALSCandidates",
    "AcceptanceModel",
    "ConstrainedAcceptanceModel",
    "AdamicAdarCandidates",
    "BridgeBonusReranker",
    "BrokerRanker",
    "DataValidationError",
    "FEATURE_NAMES",
    "InterestOverlapCandidates",
    "IntroductionRecommender",
    "ModelFormatError",
    "Network",
    "PairFeatures",
    "Slates",
    "TooFewContactsError",
    "assign_pairs",
    "atomic_write",
    "common_neighbour_broker_pairs",
    "acceptance_from_dict",
    "detect_communities",
    "evaluate_broker",
    "evaluate_slates",
    "evaluation_members",
    "explain_introductions",
    "fill_pledges",
    "generate_tables",
    "heldout_matrix",
    "holdout_split",
    "load_model",
    "load_network",
    "merge_pools",
    "network_from_frames",
    "network_size_tier_codes",
    "plus_one_select",
    "rank_all",
    "rank_introductions_to_make",
    "read_table",
    "reciprocal",
    "save_model",
    "summarize_reasons",
    "synthetic_network",
    "tfidf_interests",
    "top_k",
    "verify_model_dir",
    "write_synthetic",
    "write_frame",
    "write_tables",
]
