"""Plus One's serving layer: the ranking function in-process (:class:`Recommender`) and over HTTP
(``serving.app``).
"""

from serving._recommender import Recommender
from serving._types import (
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
    "Introduction",
    "ModelNotLoadedError",
    "Reasons",
    "Recommender",
    "ReloadError",
    "ReloadResult",
    "Slate",
    "UnknownInterestsError",
    "UnknownMemberError",
]
