"""Upper bounds on what one call may ask for, checked before anything is allocated.

A slate of ``k`` costs ``PREFERENCE_DEPTH × k`` entries per member in batch ranking (ids, scores
and flags), so an unchecked ``k`` of a million on 300 members asks for 300 × 6,000,000 entries
and the process is killed for memory. The bounds are far above any slate a person reads and any
pool the candidate sources fill, and every entry point (the estimator's ranking methods, the
config, the command line, the service) checks them with :func:`check_slate_size`.
"""

from __future__ import annotations

import numbers

__all__ = ["MAX_POOL_SIZE", "MAX_SLATE_SIZE", "check_slate_size"]

#: The longest slate any call may ask for.
MAX_SLATE_SIZE = 1_000
#: The largest candidate pool (and per-source candidate count) a model may be fitted with.
MAX_POOL_SIZE = 10_000


def check_slate_size(k: object, *, name: str = "k", limit: int = MAX_SLATE_SIZE) -> int:
    """``k`` as an int when it is a whole number in ``1..limit``; else a ValueError naming it.

    Examples
    --------
    >>> check_slate_size(20)
    20
    >>> check_slate_size(10**6)
    Traceback (most recent call last):
    ...
    ValueError: k must be at most 1000 (a slate of 1000 introductions), got 1000000
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"{name} must be a whole number of at least 1, got {k!r}")
    if k < 1:
        raise ValueError(f"{name} must be at least 1, got {k!r}")
    if k > limit:
        raise ValueError(
            f"{name} must be at most {limit} (a slate of {limit} introductions), got {int(k)}"
        )
    return int(k)
