"""Plus One's serving layer: the ranking function in-process (:class:`Recommender`) and over HTTP
(``serving.app``).

The in-process API is re-exported here; its implementation lives in private modules:
``_recommender`` (the :class:`Recommender`: load, hot reload, rank), ``_types`` (results and
errors), ``_snapshot`` (one loaded version), ``_cache`` (its slate cache), ``_capacity``
(recipient capacity counts), ``_sources`` (model directories and MLflow URIs), ``_precompute``
(slates computed ahead in a child process) and ``_broker`` (introductions a member could make,
:func:`introductions_to_make`). The HTTP service is ``serving.app`` with ``_schemas``,
``_http_errors`` and ``_broker_routes``.
"""

from serving._broker import (
    BrokerReasons,
    BrokerSlate,
    IntroductionToMake,
    SmallNetwork,
    introductions_to_make,
)
from serving._recommender import Recommender
from serving._types import (
    ColdStartUnavailableError,
    Introduction,
    ModelNotLoadedError,
    Reasons,
    ReloadError,
    ReloadResult,
    Slate,
    UnknownInterestsError,
    UnknownMemberError,
)

__all__ = [
    "BrokerReasons",
    "BrokerSlate",
    "ColdStartUnavailableError",
    "Introduction",
    "IntroductionToMake",
    "ModelNotLoadedError",
    "Reasons",
    "Recommender",
    "ReloadError",
    "ReloadResult",
    "SmallNetwork",
    "Slate",
    "UnknownInterestsError",
    "UnknownMemberError",
    "introductions_to_make",
]
