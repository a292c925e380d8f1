"""Communities of the training graph and network-size tiers: structural groups, no sensitive
data.
"""

from __future__ import annotations

import logging
import random

import igraph as ig
import numpy as np
import scipy.sparse as sp

__all__ = [
    "ENSEMBLE",
    "TIER_NAMES",
    "co_membership",
    "community_ensemble",
    "detect_communities",
    "evaluation_partitions",
    "network_size_tier_codes",
]

logger = logging.getLogger(__name__)

#: Tier code → name; members outside networks (few connections) are who the product is for.
TIER_NAMES = ("small", "medium", "large")


def detect_communities(
    adjacency: sp.csr_matrix,
    *,
    resolution: float = 1.0,
    n_iterations: int = 2,
    random_state: int = 0,
) -> np.ndarray:
    """Modularity communities of an undirected graph with igraph's Leiden implementation.

    Leiden (Traag, Waltman & van Eck 2019) in igraph's C core: on a 100,000-member graph with a
    million edges it takes seconds where the ``leidenalg`` package took a minute (measured here).
    Isolated members each form their own community.

    Parameters
    ----------
    adjacency : csr_matrix of shape (n, n)
        Symmetric adjacency.
    resolution : float
        Modularity resolution; larger gives smaller communities.
    random_state : int
        Seed for igraph's random number generator (restored afterwards).

    Returns
    -------
    ndarray of shape (n,), int32
        Community label per member, numbered by decreasing community size.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> rows = [0, 1, 0, 2, 1, 2, 3, 4, 3, 5, 4, 5]
    >>> cols = [1, 0, 2, 0, 2, 1, 4, 3, 5, 3, 5, 4]
    >>> two_triangles = sp.csr_matrix(([1.0] * 12, (rows, cols)), shape=(6, 6))
    >>> labels = detect_communities(two_triangles)
    >>> bool(labels[0] == labels[1] == labels[2] != labels[3] == labels[4] == labels[5])
    True
    """
    graph = _graph(adjacency)
    return _leiden(graph, resolution=resolution, n_iterations=n_iterations, seed=random_state)


#: The partitions of a model's community ensemble: (resolution, seed offset). The first is the
#: model's own partition (:func:`detect_communities` at ``random_state``).
ENSEMBLE = ((1.0, 0), (1.0, 1), (1.0, 2), (0.5, 3), (2.0, 4))


def community_ensemble(
    adjacency: sp.csr_matrix,
    *,
    partitions: tuple[tuple[float, int], ...] = ENSEMBLE,
    random_state: int = 0,
) -> np.ndarray:
    """Several modularity partitions of one graph: Leiden at other seeds and resolutions.

    A boundary that one run of Leiden draws may be luck; the share of the ensemble's partitions
    that put two members in one community (:func:`co_membership`) says how firmly they belong
    together, so a bonus for bridging can pay for crossings that hold under any reasonable
    partition and little for a lucky boundary.

    Parameters
    ----------
    adjacency : csr_matrix (n, n)
    partitions : tuple of (resolution, seed offset)
        Each partition's modularity resolution and its seed, ``random_state + offset``.
    random_state : int

    Returns
    -------
    ndarray (n, len(partitions)) int32
        Column ``m`` holds each member's community in partition ``m``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> rows = [0, 1, 0, 2, 1, 2, 3, 4, 3, 5, 4, 5, 2, 3]
    >>> cols = [1, 0, 2, 0, 2, 1, 4, 3, 5, 3, 5, 4, 3, 2]
    >>> labels = community_ensemble(sp.csr_matrix(([1.0] * 14, (rows, cols)), shape=(6, 6)))
    >>> labels.shape, float(co_membership(labels, [0, 0], [1, 5]).round(1)[1])
    ((6, 5), 0.0)
    """
    graph = _graph(adjacency)
    columns = [
        _leiden(graph, resolution=resolution, n_iterations=2, seed=random_state + offset)
        for resolution, offset in partitions
    ]
    return np.column_stack(columns).astype(np.int32)


def co_membership(labels: np.ndarray, u, v) -> np.ndarray:
    """(P,) float32 share of the partitions in ``labels`` (n, M) that put ``u[i]`` and ``v[i]`` in
    one community: 1 on the diagonal, symmetric, in [0, 1]."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    return (labels[u] == labels[v]).mean(axis=-1).astype(np.float32)


def evaluation_partitions(
    adjacency: sp.csr_matrix, *, random_state: int = 0
) -> dict[str, np.ndarray]:
    """Partitions a model never saw, to judge bridging at evaluation only.

    Leiden at seeds far from any model's (``random_state + 1000`` onwards) at resolutions 0.5, 1
    and 2, and Louvain (igraph's multilevel); at least five, so a bridge rate can be stated as
    the median over them rather than under one boundary.
    """
    graph = _graph(adjacency)
    base = random_state + 1000
    out = {
        f"leiden_r{res:g}_s{base + i}": _leiden(
            graph, resolution=res, n_iterations=2, seed=base + i
        )
        for i, res in enumerate((1.0, 1.0, 0.5, 2.0, 1.0))
    }
    previous = ig.set_random_number_generator(random.Random(base))
    try:
        out["louvain"] = _relabel(np.asarray(graph.community_multilevel().membership))
    finally:
        ig.set_random_number_generator(previous if previous is not None else random)
    return out


def _graph(adjacency: sp.csr_matrix) -> ig.Graph:
    n = adjacency.shape[0]
    upper = sp.triu(adjacency, k=1).tocoo()
    return ig.Graph(n=n, edges=np.column_stack([upper.row, upper.col]), directed=False)


def _leiden(graph: ig.Graph, *, resolution: float, n_iterations: int, seed: int) -> np.ndarray:
    previous = ig.set_random_number_generator(random.Random(seed))
    try:
        clustering = graph.community_leiden(
            objective_function="modularity", resolution=resolution, n_iterations=n_iterations
        )
    finally:
        ig.set_random_number_generator(previous if previous is not None else random)
    labels = _relabel(np.asarray(clustering.membership, dtype=np.int64))
    logger.info(
        "found %d communities (resolution %g, modularity %.3f)",
        labels.max(initial=-1) + 1,
        resolution,
        clustering.modularity,
    )
    return labels


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Communities numbered by size (largest first), ties by first member: labels that do not
    depend on igraph's order."""
    n = len(labels)
    sizes = np.bincount(labels)
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    order = np.lexsort((first, -sizes))
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    return relabel[labels].astype(np.int32)


def network_size_tier_codes(
    degrees: np.ndarray, *, thresholds: tuple[int, int] = (5, 20)
) -> np.ndarray:
    """Tier code per member: 0 small (< thresholds[0] connections), 1 medium, 2 large (≥
    thresholds[1]).
    """
    degrees = np.asarray(degrees)
    return (degrees >= thresholds[0]).astype(np.int8) + (degrees >= thresholds[1]).astype(np.int8)
