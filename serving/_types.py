"""What the in-process API returns and raises: typed, frozen results and the errors (each with
the HTTP status the service answers it with).

:class:`Slate` holds :class:`Introduction` s, each with its :class:`Reasons`; a reload answers
with a :class:`ReloadResult` and remembers its failure as a :class:`ReloadError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recsys import ModelFormatError

__all__ = [
    "ColdStartUnavailableError",
    "Introduction",
    "ModelNotLoadedError",
    "Reasons",
    "ReloadError",
    "ReloadResult",
    "Slate",
    "UnknownInterestsError",
    "UnknownMemberError",
    "describe",
    "shown_value",
]


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Reasons:
    """Why two members should meet.

    Attributes
    ----------
    shared_interests : tuple of str
        The most telling shared interests (the rarest first), at most three.
    n_shared_interests : int
        How many interests the two share in all.
    mutual_contacts : tuple of str
        Member ids of mutual contacts who could make the introduction (best connected first), at
        most three.
    n_mutual_contacts : int
        How many mutual contacts the two have in all.
    bridges_communities : bool
        The two sit in different communities of the network (always ``False`` for cold start,
        where the member has no community yet).
    summary : str
        One line for people, e.g. ``"3 shared interests, 2 mutual contacts could introduce you"``.
    """

    shared_interests: tuple[str, ...]
    n_shared_interests: int
    mutual_contacts: tuple[str, ...]
    n_mutual_contacts: int
    bridges_communities: bool
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared_interests": list(self.shared_interests),
            "n_shared_interests": self.n_shared_interests,
            "mutual_contacts": list(self.mutual_contacts),
            "n_mutual_contacts": self.n_mutual_contacts,
            "bridges_communities": self.bridges_communities,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Introduction:
    """One proposed introduction: the other member, the score (higher is better) and the
    reasons.
    """

    member_id: str
    score: float
    reasons: Reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "score": self.score,
            "reasons": self.reasons.to_dict(),
        }


@dataclass(frozen=True)
class Slate:
    """The introductions for one member, best first, and the model version that ranked them.

    ``member_id`` is ``None`` for a cold-start slate (a member described only by interests).
    """

    member_id: str | None
    introductions: tuple[Introduction, ...]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "introductions": [i.to_dict() for i in self.introductions],
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``swapped`` is true when a new version now serves; ``busy`` when it
    did not run because another reload was running (``reload(wait=False)``)."""

    swapped: bool
    model_version: str | None
    previous_version: str | None
    busy: bool = False


@dataclass(frozen=True)
class ReloadError:
    """The last failed attempt to load a model version (the previous one, if any, keeps
    serving).
    """

    message: str
    source: str
    at: float  # seconds since the epoch


class UnknownMemberError(LookupError):
    """The member id is not among the model's members (HTTP 404)."""

    def __init__(self, member_id: str, n_members: int):
        self.member_id = member_id
        super().__init__(
            f"unknown member {shown_value(member_id)}: not among the model's {n_members:,} members"
        )

    def __str__(self) -> str:  # LookupError would quote the whole message
        return self.args[0]


class UnknownInterestsError(ValueError):
    """None of the interests given for a cold-start slate is known to the model (HTTP 422)."""


class ModelNotLoadedError(RuntimeError):
    """No model has loaded yet (HTTP 503)."""


class ColdStartUnavailableError(RuntimeError):
    """The model serving has no interest-based candidates, so no cold-start slate (HTTP 501:
    not a passing state, unlike 503)."""


#: How much of a caller's value an error message shows.
SHOWN_CHARACTERS = 64


def shown_value(value: object) -> str:
    """A caller's value as an error message shows it: quoted, control characters escaped, cut
    to :data:`SHOWN_CHARACTERS` (an id of a megabyte is not echoed back).

    Examples
    --------
    >>> shown_value("m1")
    "'m1'"
    >>> shown_value("x" * 100)[-5:]
    "x'..."
    """
    text = str(value)
    if len(text) > SHOWN_CHARACTERS:
        return repr(text[:SHOWN_CHARACTERS]) + "..."
    return repr(text)


def describe(err: BaseException) -> str:
    """``err`` in one line for a log or ``/readyz``: a model format error's own message, else the
    kind of error and its message.
    """
    text = str(err).strip() or type(err).__name__
    if isinstance(err, ModelFormatError):
        return text
    return f"{type(err).__name__}: {text}"
