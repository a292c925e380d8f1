"""Recipient capacity while serving: how often each member was shown lately, and who is full.

A :class:`DecayingInboundCounter` holds counts that halve every ``half_life`` seconds; an
:class:`InboundLimit` wraps one for a model version, adds the precomputed table's planned
showings, and answers the ranking with who is at capacity and everyone's recent exposure.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from recsys import IntroductionRecommender

__all__ = ["DecayingInboundCounter", "InboundLimit"]


class DecayingInboundCounter:
    """How often each member was shown lately: counts that halve every ``half_life`` seconds.

    The serving path skips candidates whose decayed count has reached their capacity, so a
    popular member is not proposed to everyone at once; the counts recover on their own.
    Not thread-safe by itself: the service holds a lock around :meth:`record` and :meth:`over`.
    """

    def __init__(self, capacity: np.ndarray, *, half_life: float = 86_400.0):
        self.capacity = np.asarray(capacity, dtype=np.float64)
        self.half_life = half_life
        self.counts = np.zeros(len(self.capacity), dtype=np.float64)
        self.stamp = np.zeros(len(self.capacity), dtype=np.float64)

    def _decayed(self, rows: np.ndarray, now: float) -> np.ndarray:
        return self.counts[rows] * np.exp2(-(now - self.stamp[rows]) / self.half_life)

    def record(self, rows: np.ndarray, now: float) -> None:
        """Count one showing per entry of ``rows`` (a member listed twice was shown twice)."""
        rows, times = np.unique(np.asarray(rows, dtype=np.int64), return_counts=True)
        self.counts[rows] = self._decayed(rows, now) + times
        self.stamp[rows] = now

    def over(
        self, rows: np.ndarray, now: float, *, planned: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(rows),) bool: the member has reached capacity (one more showing would take the
        count above it).

        ``planned`` (per member, optional) adds showings already promised elsewhere, e.g. a
        precomputed table's. Compared as ``count > capacity - 1`` rather than ``count >=
        capacity``:
        counts decay from the moment they are recorded, so a member just filled would otherwise
        read as a hair below.
        """
        rows = np.asarray(rows, dtype=np.int64)
        count = self._decayed(rows, now)
        if planned is not None:
            count = count + planned[rows]
        return count > self.capacity[rows] - 1

    def over_all(self, now: float, *, planned: np.ndarray | None = None) -> np.ndarray:
        """(n,) bool: every member who has reached capacity."""
        return self.full(self.counts_all(now, planned=planned))

    def counts_all(self, now: float, *, planned: np.ndarray | None = None) -> np.ndarray:
        """(n,) float64: every member's decayed count (plus ``planned`` showings)."""
        count = self._decayed(np.arange(len(self.capacity)), now)
        return count if planned is None else count + planned

    def full(self, counts: np.ndarray) -> np.ndarray:
        """(n,) bool: who has reached capacity, given every member's counts (:meth:`counts_all`),
        by the rule of :meth:`over`."""
        return counts > self.capacity - 1


class InboundLimit:
    """Recipient capacity while serving: an inbound counter that decays over time.

    Every slate ranked afresh records its members in a :class:`DecayingInboundCounter`
    whose counts halve every ``half_life`` seconds; the slates of this version's precomputed
    table count as ``planned`` showings (they do not decay, and a new version, which brings its
    own table, does not inherit them, while it does inherit the live counts). A member whose
    count has reached their capacity is taken out of the pools of the slates ranked after that,
    until the count decays below it. Capacity is the model's batch
    capacity for one slate per member (:meth:`recsys.IntroductionRecommender.slate_capacity`
    with ``k`` = 20), per half-life: a member's ``capacity`` column where the data has one, else
    ``capacity_multiple`` times the average. A cached slate shown again is not counted again.
    The same counts are the exposure the model's least-exposed places read (``floor_slots``: the
    last places of a fresh slate go to the member's next candidates shown least lately).
    """

    #: Seconds between full recomputations of who is at capacity; members reaching it are added
    #: at once.
    REFRESH_SECONDS = 1.0

    def __init__(self, model: IntroductionRecommender, half_life: float):
        net = model.network_
        self.member_ids = net.member_ids
        self.counter = DecayingInboundCounter(
            model.slate_capacity(net, n_slates=net.n_members, k=20), half_life=half_life
        )
        self.planned = np.zeros(net.n_members, dtype=np.float64)
        self._lock = threading.Lock()
        self._mask = np.zeros(net.n_members, dtype=bool)
        self._exposure = np.zeros(net.n_members, dtype=np.float64)
        self._mask_at = -np.inf

    def unavailable(self, now: float) -> np.ndarray:
        """(n_members,) bool: who is at capacity now (read-only; shared with other requests)."""
        return self.state(now)[0]

    def state(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Who is at capacity and everyone's recent showings (decayed counts plus planned ones),
        both refreshed every :attr:`REFRESH_SECONDS` (read-only; shared with other requests)."""
        with self._lock:
            if now - self._mask_at >= self.REFRESH_SECONDS:
                # new arrays: readers keep theirs
                self._exposure = self.counter.counts_all(now, planned=self.planned)
                self._mask = self.counter.full(self._exposure)
                self._mask_at = now
            return self._mask, self._exposure

    def record(self, rows: np.ndarray, now: float, *, planned: bool = False) -> None:
        """Count one showing per entry of ``rows``: live (decaying) or ``planned`` (the precomputed
        table's).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        with self._lock:
            if planned:
                np.add.at(self.planned, rows, 1.0)
            else:
                self.counter.record(rows, now)
            full = rows[self.counter.over(rows, now, planned=self.planned)]
            if len(full) and not self._mask[full].all():
                mask = self._mask.copy()
                mask[full] = True
                self._mask = mask

    def carry_over(self, previous: InboundLimit) -> None:
        """Start from ``previous``'s counts, matched by member id (a new version keeps who was
        shown lately).
        """
        rows = pd.Index(self.member_ids).get_indexer(previous.member_ids)
        known = rows >= 0
        with previous._lock:
            counts, stamps = previous.counter.counts[known], previous.counter.stamp[known]
        with self._lock:
            self.counter.counts[rows[known]] = counts
            self.counter.stamp[rows[known]] = stamps
            self._mask_at = -np.inf

    def stats(self) -> dict[str, Any]:
        mask = self.unavailable(time.time())
        return {
            "half_life_seconds": self.counter.half_life,
            "members_at_capacity": int(mask.sum()),
        }
