"""The HTTP service's request and response bodies (pydantic models) and their limits.

FastAPI validates requests against the ``...In`` models and documents responses with the
``...Out`` ones; the OpenAPI document at ``/openapi.json`` is built from them. The limits bound
what one request may ask for: a slate of at most :data:`MAX_K`, a batch of :data:`MAX_BATCH`
members, ids of :data:`MAX_ID_LENGTH` characters.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "MAX_BATCH",
    "MAX_EXCLUDE",
    "MAX_ID_LENGTH",
    "MAX_INTERESTS",
    "MAX_K",
    "BatchIn",
    "BatchOut",
    "BrokerSlateOut",
    "ColdStartIn",
    "ErrorOut",
    "HealthOut",
    "ReadyOut",
    "ReloadOut",
    "SlateOut",
    "error_responses",
]

MAX_K = 100
MAX_BATCH = 200
MAX_EXCLUDE = 200
MAX_INTERESTS = 200
MAX_ID_LENGTH = 256


# ---------------------------------------------------------------------------------- slates
class ReasonsOut(BaseModel):
    shared_interests: list[str] = Field(
        description="The most telling shared interests, rarest first (at most 3)"
    )
    n_shared_interests: int = Field(ge=0)
    mutual_contacts: list[str] = Field(
        description="Member ids of mutual contacts who could make the introduction (at most 3)"
    )
    n_mutual_contacts: int = Field(ge=0)
    bridges_communities: bool = Field(
        description="The two members sit in different communities of the network"
    )
    summary: str = Field(
        description=(
            'One line for people, e.g. "3 shared interests, 2 mutual contacts could introduce you"'
        )
    )


class IntroductionOut(BaseModel):
    member_id: str = Field(description="The member proposed for an introduction")
    score: float = Field(description="Higher is better; comparable within one slate")
    reasons: ReasonsOut


class SlateOut(BaseModel):
    member_id: str | None = Field(description="Whose slate this is (null for a cold-start slate)")
    introductions: list[IntroductionOut]
    model_version: str


class BatchSlateOut(BaseModel):
    member_id: str
    introductions: list[IntroductionOut]


class BatchOut(BaseModel):
    slates: list[BatchSlateOut] = Field(description="One slate per known member, in request order")
    unknown_member_ids: list[str] = Field(
        description="Requested members the model does not know (no slate)"
    )
    model_version: str


def _whole_number(value: Any) -> int:
    """JSON numbers that are whole (``13`` or ``13.0``, as JSON Schema's integer allows); never
    text or booleans.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise ValueError("must be a whole number")
    return int(value)


SlateSize = Annotated[
    int, Field(ge=1, le=MAX_K, description="Slate size"), BeforeValidator(_whole_number)
]


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    member_ids: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(
        min_length=1, max_length=MAX_BATCH
    )
    k: SlateSize = 20


class ColdStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    interests: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]] = Field(
        min_length=1,
        max_length=MAX_INTERESTS,
        description=(
            "Interest names as the model knows them; unknown ones are ignored, and when none "
            "is known the answer is a 422 that says so"
        ),
    )
    k: SlateSize = 20


# ---------------------------------------------------------------------------------- operations
class ErrorOut(BaseModel):
    error: str = Field(
        description=(
            "not_found, invalid_request, not_ready, forbidden, unauthorized, reload_failed, ..."
        )
    )
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class HealthOut(BaseModel):
    status: str


class ReloadErrorOut(BaseModel):
    message: str
    at: str


class CacheOut(BaseModel):
    size: int
    max_size: int
    hits: int
    misses: int


class PrecomputeOut(BaseModel):
    state: str = Field(description="ranking, explaining, done, stopped: ..., or failed: ...")
    slates: int = Field(description="Slates taken into the cache so far")
    of: int = Field(description="Slates the table will hold")
    k: int = Field(description="Their length")
    seconds: float


class InboundOut(BaseModel):
    half_life_seconds: float
    members_at_capacity: int = Field(
        description="Members left out of new slates until their recent introductions decay"
    )


class NextVersionOut(BaseModel):
    model_version: str
    precompute: PrecomputeOut | None


class ReadyOut(BaseModel):
    status: str = Field(
        description="ready, warming (the precomputed table is being built) or not_ready"
    )
    source: str
    model_version: str | None
    registry_version: str | None
    manifest_sha256: str | None
    n_members: int | None
    loaded_at: str | None
    cache: CacheOut | None = Field(description="The slate cache of the version serving now")
    precompute: PrecomputeOut | None = Field(
        None, description="The precomputed slate table of that version, when one is built"
    )
    inbound: InboundOut | None = Field(None, description="Recipient capacity in serving, when on")
    next_version: NextVersionOut | None = Field(
        None, description="A new version being prepared (its table built) before it serves"
    )
    last_reload_error: ReloadErrorOut | None


class ReloadOut(BaseModel):
    reloaded: bool
    model_version: str | None
    previous_version: str | None


# ---------------------------------------------------------------------------------- broker
class SmallNetworkOut(BaseModel):
    member_id: str
    n_connections: int = Field(ge=0)


class BrokerReasonsOut(BaseModel):
    shared_interests: list[str] = Field(
        description="The rarest few interests the two share (at most 3)"
    )
    n_shared_interests: int = Field(ge=0)
    n_other_mutual_contacts: int = Field(
        ge=0, description="Mutual contacts of the two besides the broker"
    )
    bridges_communities: bool = Field(
        description="The two sit in different communities of the network"
    )
    small_networks: list[SmallNetworkOut] = Field(
        description="Sides with fewer than 5 connections"
    )
    summary: str = Field(
        description='One line, e.g. "2 shared interests (jazz, chess); u7 has 2 connections"'
    )


class IntroductionToMakeOut(BaseModel):
    member_a: str
    member_b: str
    score: float = Field(description="Higher is better; comparable within one list")
    reasons: BrokerReasonsOut


class BrokerSlateOut(BaseModel):
    member_id: str = Field(description="The broker: the member who would make the introductions")
    introductions_to_make: list[IntroductionToMakeOut]
    model_version: str


def error_responses(
    *codes: int, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: each of ``codes`` answers with an :class:`ErrorOut`, described
    by ``descriptions`` where the default text would not say when."""
    out: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in codes}
    for code, text in (descriptions or {}).items():
        out[code]["description"] = text
    return out
