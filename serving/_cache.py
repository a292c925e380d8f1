"""The slate cache and what it holds: explained slates as plain rows, in a thread-safe LRU.

A :class:`SlateCache` belongs to one model version and goes with it; a cached slate is exactly
what ranking again would give, since a slate is the same for the same member and version.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from recsys import IntroductionRecommender, summarize_reasons
from serving._types import Introduction, Reasons

__all__ = ["Row", "SlateCache", "explain_rows", "rounded_score", "to_introduction"]


# ---------------------------------------------------------------------------------- reasons
#: One explained introduction as plain values: (other id, score, shared interests, n shared,
#: mutual contacts, n mutual, bridges, summary, the introduction as JSON text). The cache keeps
#: these rather than dataclasses: tuples of strings and numbers are not tracked by the garbage
#: collector, so a cache of many thousand slates adds nothing to its full collections (which
#: otherwise take 100+ ms here); the JSON text lets the HTTP layer answer a cached slate by
#: joining strings.
Row = tuple[str, float, tuple[str, ...], int, tuple[str, ...], int, bool, str, str]


def _row(other_id: str, score: float, raw: dict[str, Any]) -> Row:
    n_shared, n_mutual, bridges = (
        int(raw["n_shared_interests"]),
        int(raw["n_mutual_contacts"]),
        bool(raw["bridges_communities"]),
    )
    shared, mutual = (
        tuple(str(x) for x in raw["shared_interests"]),
        tuple(str(x) for x in raw["mutual_contacts"]),
    )
    summary = summarize_reasons(raw)
    intro = Introduction(
        other_id, score, Reasons(shared, n_shared, mutual, n_mutual, bridges, summary)
    )
    return (
        other_id,
        score,
        shared,
        n_shared,
        mutual,
        n_mutual,
        bridges,
        summary,
        json.dumps(intro.to_dict(), separators=(",", ":")),
    )


def to_introduction(row: Row) -> Introduction:
    other, score, shared, n_shared, mutual, n_mutual, bridges, summary, _ = row
    return Introduction(
        other, score, Reasons(shared, n_shared, mutual, n_mutual, bridges, summary)
    )


def explain_rows(
    model: IntroductionRecommender, row: int, others: np.ndarray, scores: np.ndarray
) -> tuple[Row, ...]:
    """The slate's rows with the library's reasons (``model.explain``)."""
    if len(others) == 0:
        return ()
    names = model.network_.member_ids
    return tuple(
        _row(str(names[int(o)]), rounded_score(s), r)
        for o, s, r in zip(others, scores, model.explain(row, others))
    )


def rounded_score(value: float) -> float:
    """A score as the API gives it: rounded to six places."""
    return round(float(value), 6)


# ---------------------------------------------------------------------------------- cache
class SlateCache:
    """A thread-safe LRU of explained slates, ``(member_id, n) → tuple of rows`` (see ``Row``).

    It belongs to one model snapshot and is dropped with it, so a reload can never serve a slate
    of the previous version. Hand-written rather than ``functools.lru_cache`` because a reload
    reads the hottest keys to warm the next snapshot's cache.
    """

    def __init__(self, maxsize: int):
        self.maxsize = max(int(maxsize), 0)
        self._data: OrderedDict[tuple[str, int], tuple[Row, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int]) -> tuple[Row, ...] | None:
        if not self.maxsize:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
            else:
                self._data.move_to_end(key)
                self.hits += 1
            return value

    def peek(self, key: tuple[str, int]) -> tuple[Row, ...] | None:
        """Like :meth:`get`, but a miss is not counted (the ranking that follows counts it)."""
        if not self.maxsize:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
            return value

    def put(self, key: tuple[str, int], value: tuple[Row, ...]) -> None:
        if not self.maxsize:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def put_new(self, key: tuple[str, int], value: tuple[Row, ...]) -> bool:
        """Put ``value`` unless ``key`` is there already (it stays as it is); True when put."""
        if not self.maxsize:
            return False
        with self._lock:
            if key in self._data:
                return False
            self._data[key] = value
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
            return True

    def drain(self, chunk: int = 500) -> None:
        """Empty the cache a few hundred slates at a time, letting other threads run in between.

        A dropped version's cache can hold millions of small objects; freeing them in one go
        held the interpreter for 0.7 s in the middle of serving.
        """
        while True:
            with self._lock:
                if not self._data:
                    return
                gone = [self._data.popitem(last=False) for _ in range(min(chunk, len(self._data)))]
            del gone
            time.sleep(0)

    def hottest(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` most recently used keys, most recent first."""
        with self._lock:
            keys = list(self._data)
        return keys[::-1][:n]

    def stats(self) -> dict[str, int]:
        return {
            "size": len(self._data),
            "max_size": self.maxsize,
            "hits": self.hits,
            "misses": self.misses,
        }
