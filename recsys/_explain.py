"""Reasons for an introduction, and the one line people read.

An introduction is explained by what the two members share (the rarest of their shared
interests, by name), who could make the introduction (the best-connected mutual contacts) and
whether it bridges two communities of the training graph. Nothing sensitive is read here.
:func:`summarize_reasons` turns any reasons dict (a member's slate or a broker's pair) into the
line shown to people; the command line, the HTTP service and the broker lists all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["explain_introductions", "summarize_reasons"]


def _row(matrix: sp.csr_matrix, r: int) -> np.ndarray:
    # plain slices of the CSR arrays: scipy's row indexing costs ~0.3 ms per reason
    return matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]


def explain_introductions(
    member_row: int,
    other_rows: np.ndarray,
    *,
    adjacency: sp.csr_matrix,
    member_interests: sp.csr_matrix,
    interest_weights: sp.csr_matrix,
    degrees: np.ndarray,
    communities: np.ndarray,
    member_ids: np.ndarray,
    interest_names: np.ndarray,
    max_interests: int = 3,
    max_contacts: int = 3,
) -> list[dict[str, Any]]:
    """Reasons for introducing ``member_row`` to each of ``other_rows``.

    Parameters
    ----------
    member_row : int
    other_rows : ndarray (S,) int
    adjacency, member_interests, interest_weights : csr_matrix
        The training graph, raw interests and their TF-IDF weights (rows are members).
    degrees : ndarray (n,) int
    communities : ndarray (n,) int
    member_ids, interest_names : ndarray (n,) and (m,) of str
    max_interests, max_contacts : int
        How many shared interests and mutual contacts to name.

    Returns
    -------
    list of dict, one per other member
        ``shared_interests`` (the rarest few, by name), ``n_shared_interests``,
        ``mutual_contacts`` (ids of the best-connected mutual contacts), ``n_mutual_contacts``,
        ``bridges_communities`` and ``summary`` (:func:`summarize_reasons`).
    """
    others = np.asarray(other_rows, dtype=np.int64)
    mine_i = _row(member_interests, member_row)
    mine_c = _row(adjacency, member_row)
    reasons = []
    # a slate is at most a few dozen members: this loop is per reason, not per member
    for other in others:
        shared = np.intersect1d(mine_i, _row(member_interests, other), assume_unique=True)
        # the most telling interests are the rarest: highest TF-IDF weight on the other side
        if len(shared):
            cols = _row(interest_weights, other)
            vals = interest_weights.data[
                interest_weights.indptr[other] : interest_weights.indptr[other + 1]
            ]
            order = np.argsort(cols, kind="stable")
            pos = np.minimum(np.searchsorted(cols, shared, sorter=order), max(len(cols) - 1, 0))
            weight = (
                np.where(cols[order[pos]] == shared, vals[order[pos]], 0.0)
                if len(cols)
                else np.zeros(len(shared))
            )
            shared = shared[np.argsort(-weight, kind="stable")]
        mutual = np.intersect1d(mine_c, _row(adjacency, other), assume_unique=True)
        if len(mutual):
            mutual = mutual[np.argsort(-degrees[mutual], kind="stable")]
        found = {
            "shared_interests": [str(x) for x in interest_names[shared[:max_interests]]],
            "n_shared_interests": int(len(shared)),
            "mutual_contacts": [str(x) for x in member_ids[mutual[:max_contacts]]],
            "n_mutual_contacts": int(len(mutual)),
            "bridges_communities": bool(communities[member_row] != communities[other]),
        }
        found["summary"] = summarize_reasons(found)
        reasons.append(found)
    return reasons


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summarize_reasons(reasons: Mapping[str, Any]) -> str:
    """The one line people read, from a reasons dict of a slate or of a broker's pair.

    Reads ``n_shared_interests``, ``n_mutual_contacts`` (a member's slate: contacts who could
    make the introduction) or ``n_other_mutual_contacts`` (a broker's pair: contacts the two
    share besides the broker), ``bridges_communities`` and ``small_networks`` (a broker's pair),
    whichever are present.

    Examples
    --------
    >>> summarize_reasons({"n_shared_interests": 3, "n_mutual_contacts": 2})
    '3 shared interests, 2 mutual contacts could introduce you'
    >>> summarize_reasons({"n_shared_interests": 1, "bridges_communities": True})
    '1 shared interest, from another community'
    >>> summarize_reasons({"n_mutual_contacts": 0})
    'new to your network'
    >>> summarize_reasons({"n_shared_interests": 1, "n_other_mutual_contacts": 0,
    ...                    "bridges_communities": True,
    ...                    "small_networks": [{"member_id": "u7", "n_connections": 2}]})
    '1 shared interest, they know no one else in common, from another community, u7 has 2 connections'
    """  # noqa: E501 (a doctest's expected output is one line)
    parts = []
    n_shared = int(reasons.get("n_shared_interests", 0))
    if n_shared:
        parts.append(_count(n_shared, "shared interest", "shared interests"))
    if "n_other_mutual_contacts" in reasons:
        others = int(reasons["n_other_mutual_contacts"])
        parts.append(
            _count(others, "other mutual contact", "other mutual contacts")
            if others
            else "they know no one else in common"
        )
    n_mutual = int(reasons.get("n_mutual_contacts", 0))
    if n_mutual:
        parts.append(
            _count(n_mutual, "mutual contact", "mutual contacts") + " could introduce you"
        )
    if reasons.get("bridges_communities"):
        parts.append("from another community")
    for side in reasons.get("small_networks", ()):
        n = int(side["n_connections"])
        parts.append(f"{side['member_id']} has {_count(n, 'connection', 'connections')}")
    return ", ".join(parts) or "new to your network"
