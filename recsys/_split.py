"""Hold out a share of connections for evaluation without leaving members stranded."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from recsys.data import Network

__all__ = ["holdout_split", "heldout_matrix"]

logger = logging.getLogger(__name__)


def holdout_split(
    network: Network, *, fraction: float, seed: int = 0
) -> tuple[Network, np.ndarray]:
    """Split the connections into a training network and held-out pairs.

    The newest connections are held out when the network has connection times, a seeded random
    share otherwise. A member keeps at least one training connection whenever they had one: a
    held-out connection that would strand a member is put back, and the shortfall is made up
    from the next candidates in the same order.

    Parameters
    ----------
    network : Network
        The full network.
    fraction : float
        Share of connections to hold out, in ``[0, 1)``; 0 returns the network and no pairs.
    seed : int
        Seed for the random order (also breaks ties between equal connection times).

    Returns
    -------
    train : Network
        The same members and interests with only the training connections.
    heldout : ndarray of shape (H, 2), int32
        Held-out pairs of member rows, each once with ``a < b``.

    Examples
    --------
    >>> from recsys import synthetic_network
    >>> net = synthetic_network(500, seed=1)
    >>> train, heldout = holdout_split(net, fraction=0.1, seed=0)
    >>> train.adjacency.nnz // 2 + len(heldout) == net.adjacency.nnz // 2
    True
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    edges = network.connections
    n_edges = len(edges)
    target = int(round(fraction * n_edges))
    if target == 0:
        return network, np.empty((0, 2), dtype=np.int32)

    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(n_edges)
    if network.connection_times is not None:
        # newest first; the random permutation breaks ties
        order = np.lexsort((tiebreak, -network.connection_times))
    else:
        order = tiebreak

    n = network.n_members
    held = np.zeros(n_edges, dtype=bool)
    cursor = 0
    for _ in range(20):
        need = target - int(held.sum())
        if need <= 0 or cursor >= n_edges:
            break
        take = order[cursor : cursor + need]
        cursor += len(take)
        held[take] = True
        _restore_stranded(edges, held, n)
    held_idx = np.flatnonzero(held)
    kept_idx = np.flatnonzero(~held)
    train = network.with_connections(
        edges[kept_idx],
        None if network.connection_times is None else network.connection_times[kept_idx],
    )
    logger.info("held out %d of %d connections", len(held_idx), n_edges)
    return train, edges[held_idx].astype(np.int32)


def _restore_stranded(edges: np.ndarray, held: np.ndarray, n: int) -> None:
    """Put back one held-out connection for every member left with no training connection."""
    kept = edges[~held]
    kept_degree = np.bincount(kept.ravel(), minlength=n)
    total_degree = np.bincount(edges.ravel(), minlength=n)
    while True:
        stranded = (kept_degree == 0) & (total_degree > 0)
        if not stranded.any():
            return
        held_idx = np.flatnonzero(held)
        ends = edges[held_idx]
        hit = stranded[ends[:, 0]] | stranded[ends[:, 1]]
        # one held-out connection per stranded member: the first one it appears in
        member = np.where(stranded[ends[:, 0]], ends[:, 0], ends[:, 1])[hit]
        _, first = np.unique(member, return_index=True)
        restore = held_idx[np.flatnonzero(hit)[first]]
        held[restore] = False
        np.add.at(kept_degree, edges[restore].ravel(), 1)


def heldout_matrix(heldout: np.ndarray, n_members: int) -> sp.csr_matrix:
    """Symmetric (n, n) boolean CSR of held-out pairs, for the relevance metrics."""
    a = np.concatenate([heldout[:, 0], heldout[:, 1]])
    b = np.concatenate([heldout[:, 1], heldout[:, 0]])
    data = np.ones(len(a), dtype=bool)
    return sp.csr_matrix((data, (a, b)), shape=(n_members, n_members))
