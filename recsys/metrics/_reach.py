"""Exposure and reach: who gets recommended, and how far slates take members beyond their network.

Exposure counts, coverage and the largest inbound share say who is recommended; bridge rate,
the +1 balance and the communities reached say how far the introductions widen a network.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from recsys.metrics._checks import (
    _as_binary_csr,
    _as_rows,
    _as_slates,
    _check_k,
    _valid_mask,
)

#: Tier names returned by :func:`network_size_tiers`, smallest network first.
NETWORK_SIZE_TIERS: tuple[str, str, str] = ("small", "medium", "large")


def exposure_counts(slate_ids: ArrayLike, *, n_members: int, k: int | None = None) -> np.ndarray:
    r"""Number of slates each member appears in (their exposure as a recommendation).

    .. math:: e_j = \sum_{r} \mathbb{1}[j \in \mathrm{top}_k(r)]

    (the "exposure" whose distribution Singh & Joachims, "Fairness of Exposure in Rankings",
    KDD 2018, ask to keep fair; here unweighted by position). Padding is ignored and an id
    repeated within one slate counts once.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.
    n_members : int
        ``n``; ids must be below it.
    k : int or None
        Read only the first ``k`` columns; ``None`` reads all.

    Returns
    -------
    (n,) int64

    Examples
    --------
    >>> import numpy as np
    >>> exposure_counts(np.array([[1, 2, -1], [2, 0, 3]]), n_members=5)
    array([1, 1, 2, 1, 0])
    >>> exposure_counts(np.array([[1, 2, -1], [2, 0, 3]]), n_members=5, k=1)
    array([0, 1, 1, 0, 0])
    """
    if n_members < 0:
        raise ValueError("n_members must be >= 0")
    slates = _as_slates(slate_ids, n_members=n_members)
    if k is not None:
        slates = slates[:, : _check_k(k)]
    ids = slates[_valid_mask(slates)]
    return np.bincount(ids, minlength=n_members).astype(np.int64)


def coverage(slate_ids: ArrayLike, *, n_members: int) -> float:
    r"""Share of the ``n`` members who appear in at least one slate.

    .. math:: \mathrm{coverage} = \frac{|\{j : e_j > 0\}|}{n}

    (catalogue coverage, Ge, Delgado-Battenfeld & Jannach, "Beyond accuracy", RecSys 2010).
    Slice ``slate_ids[:, :k]`` first to measure coverage of the top ``k``.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.
    n_members : int
        ``n``, ``>= 1``.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> coverage(np.array([[1, 2, -1], [2, 0, -1]]), n_members=5)
    0.6
    """
    if n_members < 1:
        raise ValueError("coverage needs n_members >= 1")
    return float(np.mean(exposure_counts(slate_ids, n_members=n_members) > 0))


def max_inbound_share(slate_ids: ArrayLike) -> float:
    r"""Largest share of all slates that a single member appears in.

    .. math:: \max_j \frac{e_j}{R}

    A guard against one popular member being introduced to everybody (the recipient-capacity
    concern of reciprocal recommenders, Pizzato et al., "RECON", RecSys 2010). Rows with an
    empty slate still count in ``R``.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.

    Returns
    -------
    float in [0, 1]; 0.0 when every slate is empty, NaN when ``R == 0``.

    Examples
    --------
    >>> import numpy as np
    >>> max_inbound_share(np.array([[1, 2], [2, 0], [2, -1], [-1, -1]]))
    0.75
    """
    slates = _as_slates(slate_ids)
    n_slates = slates.shape[0]
    if n_slates == 0:
        return float("nan")
    ids = slates[_valid_mask(slates)]
    if ids.size == 0:
        return 0.0
    return float(np.bincount(ids).max() / n_slates)


def bridge_rate(member_rows: ArrayLike, slate_ids: ArrayLike, communities: ArrayLike) -> float:
    r"""Share of recommended pairs whose two members sit in different communities.

    .. math:: \frac{|\{(u, v) : v \in \mathrm{slate}(u),\ c(u) \ne c(v)\}|}
              {|\{(u, v) : v \in \mathrm{slate}(u)\}|}

    Bridging structural holes, after Burt, *Structural Holes*, 1992; the communities are those
    detected on the training graph. Padding and repeated ids are not pairs.

    Parameters
    ----------
    member_rows : (R,) int array
        The member each slate is for.
    slate_ids : (R, K) int array
        Slates, padded with -1.
    communities : (n,) array of labels
        Community of every member (any comparable labels).

    Returns
    -------
    float in [0, 1]; NaN when there is no recommended pair.

    Examples
    --------
    >>> import numpy as np
    >>> communities = np.array(["a", "a", "b", "b"])
    >>> bridge_rate(np.array([0, 2]), np.array([[1, 2, -1], [3, -1, -1]]), communities)
    0.3333333333333333
    """
    comm = np.asarray(communities)
    if comm.ndim != 1:
        raise ValueError("communities must be 1-D (n,)")
    slates = _as_slates(slate_ids, n_members=comm.shape[0])
    rows = _as_rows(member_rows, name="member_rows", n_members=comm.shape[0])
    if rows.shape[0] != slates.shape[0]:
        raise ValueError("member_rows and slate_ids must have the same number of rows")
    r, c = np.nonzero(_valid_mask(slates))
    if r.size == 0:
        return float("nan")
    return float(np.mean(comm[rows[r]] != comm[slates[r, c]]))


def within_two_hops(
    adjacency: sp.sparray | sp.spmatrix,
    u_rows: ArrayLike,
    v_rows: ArrayLike,
    *,
    chunk_size: int = 32_768,
) -> np.ndarray:
    r"""Whether ``v`` is inside ``u``'s network: a connection or a connection's connection.

    .. math:: \mathrm{inside}(u, v) = [u = v] \lor A_{uv} \ne 0 \lor
              \exists w: A_{uw} A_{vw} \ne 0

    i.e. ``(A + A^2)_{uv} > 0`` for a 0/1 symmetric ``A``, computed pair by pair as the
    intersection of the two sparse neighbour rows, so ``A^2`` is never formed. A member is
    inside their own network.

    Parameters
    ----------
    adjacency : scipy.sparse (n, n)
        Training graph; nonzero = connected.
    u_rows, v_rows : (P,) int arrays
        The pairs.
    chunk_size : int
        Pairs handled per sparse product (bounds memory to about ``chunk_size`` times the mean
        degree).

    Returns
    -------
    (P,) bool

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> path = sp.diags_array([np.ones(4), np.ones(4)], offsets=[-1, 1], shape=(5, 5)).tocsr()
    >>> within_two_hops(path, np.array([0, 0, 0, 2]), np.array([1, 2, 3, 4]))
    array([ True,  True, False,  True])
    """
    adj = _as_binary_csr(adjacency, name="adjacency")
    n = adj.shape[0]
    if adj.shape != (n, n):
        raise ValueError(f"adjacency must be square, got {adj.shape}")
    u = _as_rows(u_rows, name="u_rows", n_members=n)
    v = _as_rows(v_rows, name="v_rows", n_members=n)
    if u.shape != v.shape:
        raise ValueError("u_rows and v_rows must have the same length")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    out = u == v
    for start in range(0, u.shape[0], chunk_size):
        uc, vc = u[start : start + chunk_size], v[start : start + chunk_size]
        direct = np.asarray(adj[uc, vc]).ravel() != 0
        common = adj[uc].multiply(adj[vc]).tocsr()
        common.eliminate_zeros()
        out[start : start + chunk_size] |= direct | (np.diff(common.indptr) > 0)
    return out


def plus_one_balance(
    member_rows: ArrayLike,
    slate_ids: ArrayLike,
    adjacency: sp.sparray | sp.spmatrix,
    *,
    mask: ArrayLike | None = None,
) -> float:
    r"""Share of slates holding at least as many introductions outside as inside the network.

    For the slate of member ``u``, ``inside`` counts introductions within two hops of ``u``
    (see :func:`within_two_hops`) and ``outside`` the rest:

    .. math:: \frac{|\{r : \mathrm{outside}_r \ge \mathrm{inside}_r,\ |\mathrm{slate}_r| > 0\}|}
              {|\{r : |\mathrm{slate}_r| > 0\}|}

    The "+1" rule of this project (DESIGN.md, ``plus_one_balance``): every slate brings at least
    one stranger per familiar face. Slates with no introduction are left out of the
    denominator: a member shown nothing was neither widened nor narrowed. Slice
    ``slate_ids[:, :k]`` first to measure the top ``k``.

    Parameters
    ----------
    member_rows : (R,) int array
        The member each slate is for.
    slate_ids : (R, K) int array
        Slates, padded with -1.
    adjacency : scipy.sparse (n, n)
        Training graph.
    mask : (R,) bool array or None
        Count only these rows (e.g. members who pledged to the +1 rule).

    Returns
    -------
    float in [0, 1]; NaN when no slate counts.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> path = sp.diags_array([np.ones(4), np.ones(4)], offsets=[-1, 1], shape=(5, 5)).tocsr()
    >>> slates = np.array([[1, 3], [1, 2], [-1, -1]])
    >>> plus_one_balance(np.array([0, 0, 4]), slates, path)
    0.5
    """
    adj_n = adjacency.shape[0]
    slates = _as_slates(slate_ids, n_members=adj_n)
    rows = _as_rows(member_rows, name="member_rows", n_members=adj_n)
    if rows.shape[0] != slates.shape[0]:
        raise ValueError("member_rows and slate_ids must have the same number of rows")
    keep = np.ones(rows.shape[0], dtype=bool)
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != rows.shape:
            raise ValueError(f"mask must have shape {rows.shape}, got {keep.shape}")
    r, c = np.nonzero(_valid_mask(slates) & keep[:, None])
    inside = within_two_hops(adjacency, rows[r], slates[r, c])
    n_inside = np.bincount(r[inside], minlength=rows.shape[0])
    n_total = np.bincount(r, minlength=rows.shape[0])
    counted = n_total > 0
    if not counted.any():
        return float("nan")
    balanced = (n_total - n_inside) >= n_inside
    return float(np.mean(balanced[counted]))


def reach(
    member_rows: ArrayLike,
    slate_ids: ArrayLike,
    adjacency: sp.sparray | sp.spmatrix,
    communities: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Distinct communities a member's network touches, now and with the whole slate added.

    .. math:: \mathrm{before}_u = |\{c(w) : A_{uw} \ne 0\}|, \qquad
              \mathrm{after}_u = |\{c(w) : A_{uw} \ne 0 \lor w \in \mathrm{slate}(u)\}|

    Community diversity of a network as a proxy for access to non-redundant information
    (Granovetter, "The strength of weak ties", 1973; Burt 1992). The member's own community
    counts only through their connections. Computed as nonzeros per row of
    ``(A[rows] + S) @ C`` with ``S`` the ``(R, n)`` slate indicator and ``C`` the ``(n, m)``
    community indicator.

    Parameters
    ----------
    member_rows : (R,) int array
    slate_ids : (R, K) int array
        Slates, padded with -1.
    adjacency : scipy.sparse (n, n)
        Training graph.
    communities : (n,) array of labels

    Returns
    -------
    before, after : (R,) int64 each, ``after >= before``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> path = sp.diags_array([np.ones(4), np.ones(4)], offsets=[-1, 1], shape=(5, 5)).tocsr()
    >>> before, after = reach(np.array([0, 2]), np.array([[4, 3], [-1, -1]]), path,
    ...                       np.array(["a", "a", "b", "b", "c"]))
    >>> before, after
    (array([1, 2]), array([3, 2]))
    """
    adj = _as_binary_csr(adjacency, name="adjacency")
    n = adj.shape[0]
    comm = np.asarray(communities)
    if comm.shape != (n,):
        raise ValueError(f"communities must have shape ({n},), got {comm.shape}")
    slates = _as_slates(slate_ids, n_members=n)
    rows = _as_rows(member_rows, name="member_rows", n_members=n)
    if rows.shape[0] != slates.shape[0]:
        raise ValueError("member_rows and slate_ids must have the same number of rows")
    _, codes = np.unique(comm, return_inverse=True)
    codes = codes.ravel()
    n_comm = int(codes.max()) + 1 if n else 0
    indicator = sp.csr_array(
        (np.ones(n), (np.arange(n), codes)), shape=(n, n_comm), dtype=np.float64
    )
    network = adj[rows]
    r, c = np.nonzero(_valid_mask(slates))
    shown = sp.csr_array(
        (np.ones(r.size), (r, slates[r, c])), shape=(rows.shape[0], n), dtype=np.float64
    )

    def distinct(members: sp.csr_array) -> np.ndarray:
        touched = (members @ indicator).tocsr()
        touched.eliminate_zeros()
        return np.diff(touched.indptr).astype(np.int64)

    return distinct(network), distinct(network + shown)


def network_size_tiers(degrees: ArrayLike, *, thresholds: tuple[int, int] = (5, 20)) -> np.ndarray:
    """Label members by network size: ``"small"``, ``"medium"`` or ``"large"``.

    ``small`` if ``degree < thresholds[0]``, ``large`` if ``degree >= thresholds[1]``, else
    ``medium``. Used to check quality of service for members with few connections (cold
    start), who graph-based candidates serve worst.

    Parameters
    ----------
    degrees : (n,) array of numbers
        Connections per member (e.g. ``np.diff(adjacency.indptr)``; ravel a ``(n, 1)``
        ``np.matrix`` first).
    thresholds : (int, int)
        ``(low, high)`` with ``low <= high``.

    Returns
    -------
    (n,) object array of str

    Examples
    --------
    >>> network_size_tiers([0, 5, 19, 20])
    array(['small', 'medium', 'medium', 'large'], dtype=object)
    """
    deg = np.asarray(degrees, dtype=np.float64)
    if deg.ndim != 1:
        raise ValueError(f"degrees must be 1-D, got shape {deg.shape}")
    low, high = thresholds
    if low > high:
        raise ValueError(f"thresholds must be increasing, got {thresholds}")
    small, medium, large = NETWORK_SIZE_TIERS
    out = np.full(deg.shape, medium, dtype=object)
    out[deg < low] = small
    out[deg >= high] = large
    return out
