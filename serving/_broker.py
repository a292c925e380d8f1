"""Broker introductions at the edges: "which of my contacts should I introduce to each other?"

:func:`introductions_to_make` turns :class:`recsys.BrokerRanker`'s arrays into typed results with
reasons (used by :meth:`serving.Recommender.rank_introductions_to_make` and ``recsys broker``);
:func:`add_broker_routes` adds ``GET /v1/members/{member_id}/introductions-to-make`` to the
service. Same rules as the other endpoints: 404 for an unknown member, 422 for a bad ``k`` and
for a member with fewer than two contacts, JSON errors ``{"error", "message", "details"}``.
Nothing here reads a sensitive attribute (a served model holds none).
"""

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from recsys import BrokerRanker, TooFewContactsError
from serving._types import UnknownMemberError

__all__ = [
    "BrokerReasons",
    "BrokerSlate",
    "IntroductionToMake",
    "SmallNetwork",
    "TooFewContactsError",
    "add_broker_routes",
    "introductions_to_make",
]


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SmallNetwork:
    """One side of a pair whose network is small: their id and number of connections."""

    member_id: str
    n_connections: int

    def to_dict(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "n_connections": self.n_connections}


@dataclass(frozen=True)
class BrokerReasons:
    """What the broker can tell both sides.

    Attributes
    ----------
    shared_interests : tuple of str
        The rarest few interests the two share, at most three.
    n_shared_interests : int
    n_other_mutual_contacts : int
        Mutual contacts of the two besides the broker.
    bridges_communities : bool
        The two sit in different communities of the network.
    small_networks : tuple of SmallNetwork
        Sides with a small network (fewer than five connections), with their number of connections.
    summary : str
        One line, e.g. ``"2 shared interests (jazz, chess); they know no one else in common; u7 has
        2 connections"``.
    """

    shared_interests: tuple[str, ...]
    n_shared_interests: int
    n_other_mutual_contacts: int
    bridges_communities: bool
    small_networks: tuple[SmallNetwork, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared_interests": list(self.shared_interests),
            "n_shared_interests": self.n_shared_interests,
            "n_other_mutual_contacts": self.n_other_mutual_contacts,
            "bridges_communities": self.bridges_communities,
            "small_networks": [s.to_dict() for s in self.small_networks],
            "summary": self.summary,
        }


@dataclass(frozen=True)
class IntroductionToMake:
    """Introduce ``member_a`` to ``member_b``: the score (higher is better) and the reasons."""

    member_a: str
    member_b: str
    score: float
    reasons: BrokerReasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_a": self.member_a,
            "member_b": self.member_b,
            "score": self.score,
            "reasons": self.reasons.to_dict(),
        }


@dataclass(frozen=True)
class BrokerSlate:
    """The introductions one member could make between their contacts, best first."""

    member_id: str
    introductions_to_make: tuple[IntroductionToMake, ...]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "introductions_to_make": [i.to_dict() for i in self.introductions_to_make],
            "model_version": self.model_version,
        }


# ---------------------------------------------------------------------------------- ranking
_rankers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_rankers_lock = threading.Lock()


def broker_ranker(model) -> BrokerRanker:
    """The fitted :class:`recsys.BrokerRanker` of ``model``, built once per loaded model (it goes
    with the model).
    """
    with _rankers_lock:
        ranker = _rankers.get(model)
    if ranker is None:  # a race only fits it twice
        ranker = BrokerRanker().fit(model)
        with _rankers_lock:
            _rankers[model] = ranker
    return ranker


def introductions_to_make(model, member_id: str, k: int, *, version: str = "") -> BrokerSlate:
    """Up to ``k`` pairs of ``member_id``'s contacts to introduce to each other, with reasons.

    The list respects each recipient's capacity on its own (the member asks alone).

    Raises
    ------
    serving.UnknownMemberError
        The member is not in the model.
    recsys.TooFewContactsError
        The member has fewer than two contacts (the message names the member).
    """
    net = model.network_
    row = int(net.rows_of([str(member_id)])[0])
    if row < 0:
        raise UnknownMemberError(str(member_id), net.n_members)
    ranker = broker_ranker(model)
    pairs, scores = ranker.rank([row], k, shared_capacity=False)
    keep = (pairs[0, :, 0] >= 0) & np.isfinite(scores[0])
    chosen, chosen_scores = pairs[0][keep], scores[0][keep]
    explained = ranker.explain(row, chosen)
    intros = tuple(
        IntroductionToMake(
            member_a=str(net.member_ids[int(a)]),
            member_b=str(net.member_ids[int(b)]),
            score=round(float(s), 6),
            reasons=BrokerReasons(
                shared_interests=tuple(r["shared_interests"]),
                n_shared_interests=int(r["n_shared_interests"]),
                n_other_mutual_contacts=int(r["n_other_mutual_contacts"]),
                bridges_communities=bool(r["bridges_communities"]),
                small_networks=tuple(
                    SmallNetwork(x["member_id"], int(x["n_connections"]))
                    for x in r["small_networks"]
                ),
                summary=r["summary"],
            ),
        )
        for (a, b), s, r in zip(chosen, chosen_scores, explained)
    )
    return BrokerSlate(str(member_id), intros, version)


# ---------------------------------------------------------------------------------- HTTP
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


def add_broker_routes(
    app, recommender, *, error_model: type[BaseModel], max_k: int, max_id_length: int
) -> None:
    """Add ``GET /v1/members/{member_id}/introductions-to-make?k=N`` to ``app`` (a FastAPI app
    serving ``recommender``).

    (This module has no ``from __future__ import annotations``: FastAPI reads the route's
    parameter annotations, which use this function's arguments, at definition time.)
    """
    from typing import Annotated

    from fastapi import Path, Query
    from fastapi.responses import JSONResponse

    @app.get(
        "/v1/members/{member_id}/introductions-to-make",
        response_model=BrokerSlateOut,
        responses={code: {"model": error_model} for code in (404, 422, 503)},
        summary=(
            "Introductions a member could make between their own contacts, "
            "with reasons for both sides"
        ),
        tags=["introductions"],
    )
    def member_introductions_to_make(
        member_id: Annotated[
            str, Path(max_length=max_id_length, description="The broker's member id")
        ],
        k: Annotated[
            int, Query(ge=1, le=max_k, description="How many introductions to list")
        ] = 10,
    ) -> Any:
        try:
            slate = recommender.rank_introductions_to_make(member_id, k)
        except TooFewContactsError as err:
            message = f"{err}"
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "message": message,
                    "details": [{"location": "path.member_id", "problem": message}],
                },
                status_code=422,
            )
        return JSONResponse(slate.to_dict())
