"""What a fitted :class:`recsys.IntroductionRecommender` knows: one frozen structure.

:class:`FittedState` is everything ``fit`` learns and everything a saved model holds; the
estimator builds its candidate sources, pair features and re-ranker from it and never changes
it (fitting again makes a new one). Its shape is owned by the persistence format
(:mod:`recsys._persist`): a field added here is a field saved, loaded and, for models saved
before it existed, given its value by an explicit migration (:mod:`recsys._migrations`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recsys._acceptance import AcceptanceModel, ConstrainedAcceptanceModel
from recsys._trees import GradientBoostedAcceptanceModel
from recsys.data import Network

__all__ = ["FittedState", "RerankSetting"]


@dataclass(frozen=True)
class RerankSetting:
    """The re-ranker setting a fitted model ranks with (tuned at fit time, or as given).

    Attributes
    ----------
    bridge_weight, degree_penalty : float
        Bridge bonus and popularity damping, in units of ``score_scale``
        (:class:`recsys.BridgeBonusReranker`).
    bound_tolerance : float or None
        Slack on the exposure bounds at every prefix (None: no bounds).
    capacity_multiple : float
        Batch ranking's recipient capacity, times the average exposure.
    floor_slots : int
        Least-exposed places at the end of a slate of the model's ``slate_size``.
    floor_depth : int
        How deep in the preference list those places look, times k.
    bonus : {"linear", "log"}
        How the bridge bonus combines with the score.
    score_scale : float
        The unit of the linear weights: a typical k-th best pool score.
    """

    bridge_weight: float
    degree_penalty: float
    bound_tolerance: float | None
    capacity_multiple: float
    floor_slots: int = 0
    floor_depth: int = 2
    bonus: Literal["linear", "log"] = "linear"
    score_scale: float = 1.0

    def replace(self, **changes: Any) -> RerankSetting:
        """A copy with ``changes`` (an unknown name is an error)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> RerankSetting:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(stored) - names)
        if unknown:
            raise ValueError(f"unknown re-ranker setting {', '.join(unknown)}")
        return cls(**dict(stored))


@dataclass(frozen=True)
class FittedState:
    """Everything a fitted model learned; what a saved model holds.

    Attributes
    ----------
    network : Network
        The training graph: member ids, CSR adjacency and member × interest matrices, and the
        operational member columns (never a sensitive attribute once saved).
    communities : ndarray (n,) int32
        Community of each member in the training graph (Leiden): the model's own partition.
    community_ensemble : ndarray (n, M) int32, or None
        Partitions of the training graph at other seeds and resolutions
        (:func:`recsys.community_ensemble`; column 0 is ``communities``): the bridge bonus pays
        for the share of them that separate two members. None: the one partition alone.
    member_factors : ndarray (n, f) float32
        L2-normalised interest embeddings (zeros for members without interests).
    als_index : ndarray of uint8, or None
        The serialised faiss index over ``member_factors`` (None: exact search).
    acceptance : AcceptanceModel, ConstrainedAcceptanceModel or GradientBoostedAcceptanceModel
    rerank : RerankSetting
    rerank_report : mapping
        What tuning found (``{"tuned": False}`` when it did not run).
    bound_groups : ndarray (n,) int16, or None
        Opt-in only: each member's group of a consented attribute, as a bare code.
    training_pairs, training_positives : int
        Pairs (and accepted ones) the acceptance model learned from.
    """

    network: Network
    communities: np.ndarray
    member_factors: np.ndarray
    als_index: np.ndarray | None
    acceptance: AcceptanceModel | ConstrainedAcceptanceModel | GradientBoostedAcceptanceModel
    rerank: RerankSetting
    rerank_report: Mapping[str, Any] = field(default_factory=lambda: {"tuned": False})
    bound_groups: np.ndarray | None = None
    community_ensemble: np.ndarray | None = None
    training_pairs: int = 0
    training_positives: int = 0

    def __post_init__(self) -> None:
        n = self.network.n_members
        checks = {
            "communities": (self.communities.shape, (n,)),
            "member_factors": (self.member_factors.shape[:1], (n,)),
        }
        if self.bound_groups is not None:
            checks["bound_groups"] = (self.bound_groups.shape, (n,))
        if self.community_ensemble is not None:
            checks["community_ensemble"] = (self.community_ensemble.shape[:1], (n,))
        for name, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"{name} has shape {got}; the network has {n} members")

    def replace(self, **changes: Any) -> FittedState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)
