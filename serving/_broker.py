"""Broker introductions at the edges: "which of my contacts should I introduce to each other?"

:func:`introductions_to_make` turns :class:`recsys.BrokerRanker`'s arrays into typed results with
reasons (used by :meth:`serving.Recommender.rank_introductions_to_make` and ``recsys broker``);
the HTTP endpoint is in ``serving._broker_routes``. Nothing here reads a sensitive attribute (a
served model holds none).
"""

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys import BrokerRanker
from serving._types import UnknownMemberError

__all__ = [
    "BrokerReasons",
    "BrokerSlate",
    "IntroductionToMake",
    "SmallNetwork",
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
