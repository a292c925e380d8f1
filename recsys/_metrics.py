"""Relevance, reach and equity metrics for batches of introduction slates.

Conventions shared by every function here:

- members are integer rows ``0..n-1``;
- a batch of slates is ``member_rows: (R,) int32`` and ``slate_ids: (R, K) int32``, best first,
  padded with ``-1`` where a slate is shorter;
- an id repeated inside one slate counts once (its first, best-ranked occurrence);
- ``adjacency`` is a CSR ``(n, n)`` symmetric 0/1 matrix (the training graph); any nonzero entry
  is a connection;
- group labels are ``(n,)`` arrays of strings; a missing label is an error (map it to
  ``"undisclosed"`` before calling: members are never dropped silently).

The flat names under which these figures are logged (``recall_at_K``, ``exposure_gini``, ...)
are fixed in ``DESIGN.md`` ("Metric names"); this module only computes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from fairlearn.metrics import MetricFrame
from numpy.typing import ArrayLike
from scipy.special import logsumexp

__all__ = [
    "atkinson",
    "atkinson_bootstrap",
    "bridge_rate",
    "coverage",
    "exposure_counts",
    "exposure_ratio",
    "gini",
    "group_exposure_table",
    "group_recall_table",
    "lorenz_curve",
    "max_inbound_share",
    "ndcg_at_k",
    "ndkl",
    "network_size_tiers",
    "plus_one_balance",
    "reach",
    "recall_at_k",
    "recall_ratio",
    "skew_at_k",
    "within_two_hops",
]

_LOGGER = logging.getLogger(__name__)

#: Tier names returned by :func:`network_size_tiers`, smallest network first.
NETWORK_SIZE_TIERS: tuple[str, str, str] = ("small", "medium", "large")

# Upper bound on the number of float64 cells materialised at once by the chunked computations
# (bootstrap resamples, NDKL prefix counts): 2**22 cells = 32 MiB per array.
_CHUNK_CELLS = 2**22


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _as_slates(slate_ids: ArrayLike, *, n_members: int | None = None) -> np.ndarray:
    """Return ``slate_ids`` as a 2-D int64 array, checking ids are -1 or valid member rows."""
    slates = np.asarray(slate_ids)
    if slates.ndim != 2:
        raise ValueError(f"slate_ids must be 2-D (R, K), got shape {slates.shape}")
    if slates.size and not np.issubdtype(slates.dtype, np.integer):
        raise TypeError(f"slate_ids must hold integers, got dtype {slates.dtype}")
    slates = slates.astype(np.int64, copy=False)
    if slates.size:
        if slates.min() < -1:
            raise ValueError("slate_ids may only hold member rows >= 0 or the padding -1")
        if n_members is not None and slates.max() >= n_members:
            raise ValueError(
                f"slate_ids holds member row {int(slates.max())} but there are only "
                f"{n_members} members"
            )
    return slates


def _as_rows(rows: ArrayLike, *, name: str, n_members: int | None = None) -> np.ndarray:
    """Return member rows as a 1-D int64 array, checking the range."""
    arr = np.asarray(rows)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or (n_members is not None and arr.max() >= n_members)):
        raise ValueError(f"{name} holds rows outside 0..{n_members}")
    return arr


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _valid_mask(slates: np.ndarray) -> np.ndarray:
    """``(R, K)`` bool: entry is a member (not padding) and not a repeat within its slate.

    Vectorised de-duplication: a stable sort keeps the first occurrence of each id first, so
    every later equal neighbour in sorted order is a repeat.
    """
    valid = slates >= 0
    if slates.shape[1] < 2:
        return valid
    order = np.argsort(slates, axis=1, kind="stable")
    ordered = np.take_along_axis(slates, order, axis=1)
    repeat_sorted = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if repeat_sorted.any():
        repeat = np.zeros_like(valid)
        np.put_along_axis(repeat, order[:, 1:], repeat_sorted, axis=1)
        valid &= ~repeat
    return valid


def _as_binary_csr(matrix: sp.sparray | sp.spmatrix, *, name: str) -> sp.csr_array:
    """A CSR copy whose stored entries are exactly the nonzeros of ``matrix``, set to 1."""
    if not sp.issparse(matrix):
        raise TypeError(f"{name} must be a scipy.sparse matrix, got {type(matrix).__name__}")
    out = sp.csr_array(matrix, dtype=np.float64, copy=True)
    out.sum_duplicates()
    out.data = (out.data != 0).astype(np.float64)
    out.eliminate_zeros()
    return out


def _as_values(values: ArrayLike) -> np.ndarray:
    """Non-negative, finite, non-empty 1-D float64 outcomes."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("values is empty: inequality of no outcomes is undefined")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite (no NaN or inf)")
    if x.min() < 0:
        raise ValueError("values must be non-negative")
    return x


def _as_labels(groups: ArrayLike, *, name: str = "groups", n: int | None = None) -> np.ndarray:
    """Group labels as a 1-D array of str; missing labels are an error, never dropped."""
    raw = np.asarray(groups, dtype=object)
    if raw.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {raw.shape}")
    if n is not None and raw.shape[0] != n:
        raise ValueError(f"{name} has {raw.shape[0]} labels, expected {n}")
    missing = pd.isna(raw)
    if missing.any():
        raise ValueError(
            f"{name} has {int(missing.sum())} missing labels; map them to an explicit value "
            "such as 'undisclosed' first"
        )
    return raw.astype(str)


def _target_codes(
    labels: np.ndarray, target_shares: Mapping[str, float]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Map labels to positions in ``target_shares``: (names, target (G,), codes (n,))."""
    names = [str(key) for key in target_shares]
    target = np.array([float(target_shares[key]) for key in target_shares], dtype=np.float64)
    if not names:
        raise ValueError("target_shares is empty")
    if not np.all(np.isfinite(target)) or target.min() < 0:
        raise ValueError("target shares must be finite and non-negative")
    if abs(target.sum() - 1.0) > 1e-6:
        raise ValueError(f"target shares must sum to 1, got {target.sum():.6g}")
    position = {name: i for i, name in enumerate(names)}
    uniq, inverse = np.unique(labels, return_inverse=True)
    unknown = [u for u in uniq if u not in position]
    if unknown:
        raise ValueError(f"groups {unknown[:5]} have no target share")
    lookup = np.array([position[u] for u in uniq], dtype=np.int64)
    return names, target, lookup[inverse]


# --------------------------------------------------------------------------------------------
# relevance
# --------------------------------------------------------------------------------------------


def _hits(slates: np.ndarray, relevant: sp.sparray | sp.spmatrix, *, k: int):
    """Shared part of recall and NDCG: (hit (R, k) bool, n_relevant (R,) int64)."""
    if not sp.issparse(relevant):
        raise TypeError("relevant must be a scipy.sparse matrix (R, n)")
    if relevant.shape[0] != slates.shape[0]:
        raise ValueError(
            f"relevant has {relevant.shape[0]} rows but there are {slates.shape[0]} slates"
        )
    rel = _as_binary_csr(relevant, name="relevant")
    top = slates[:, :k]
    _as_slates(top, n_members=rel.shape[1])
    valid = _valid_mask(top)
    rows, cols = np.nonzero(valid)
    hit = np.zeros(top.shape, dtype=bool)
    if rows.size:
        # CSR element lookup in compiled code (scipy's csr_sample_values).
        hit[rows, cols] = np.asarray(rel[rows, top[rows, cols]]).ravel() != 0
    return hit, np.diff(rel.indptr).astype(np.int64)


def recall_at_k(slate_ids: ArrayLike, relevant: sp.sparray | sp.spmatrix, *, k: int) -> np.ndarray:
    r"""Share of each member's held-out connections found in the top ``k`` of their slate.

    .. math:: \mathrm{recall@}k(r) = \frac{|\mathrm{top}_k(r) \cap \mathrm{rel}(r)|}
              {|\mathrm{rel}(r)|}

    (Manning, Raghavan & Schütze, *Introduction to Information Retrieval*, 2008, ch. 8).
    The denominator is ``|rel(r)|``, not ``min(k, |rel(r)|)``, so a member with more held-out
    connections than ``k`` cannot reach 1.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, best first, padded with -1. Only the first ``k`` columns are read.
    relevant : scipy.sparse (R, n)
        Row ``r`` marks (nonzero) the held-out connections of the member ranked in row ``r``.
    k : int
        Cut-off, ``>= 1``; ``k > K`` reads the whole slate.

    Returns
    -------
    (R,) float64
        Recall per row; NaN where the row has no relevant member.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> slates = np.array([[3, 1, -1], [0, 2, 4], [1, 2, 3]], dtype=np.int32)
    >>> relevant = sp.csr_array(([1.0, 1.0, 1.0], ([0, 0, 1], [1, 2, 4])), shape=(3, 5))
    >>> recall_at_k(slates, relevant, k=2)
    array([0.5, 0. , nan])
    """
    k = _check_k(k)
    hit, n_relevant = _hits(_as_slates(slate_ids), relevant, k=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = hit.sum(axis=1) / n_relevant
    out[n_relevant == 0] = np.nan
    return out.astype(np.float64)


def ndcg_at_k(slate_ids: ArrayLike, relevant: sp.sparray | sp.spmatrix, *, k: int) -> np.ndarray:
    r"""Normalised discounted cumulative gain at ``k`` with binary gains.

    .. math:: \mathrm{DCG@}k = \sum_{i=1}^{k} \frac{\mathbb{1}[\text{item } i \text{ relevant}]}
              {\log_2(i + 1)}, \qquad
              \mathrm{NDCG@}k = \frac{\mathrm{DCG@}k}{\sum_{i=1}^{\min(k, |\mathrm{rel}|)}
              1 / \log_2(i + 1)}

    (Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", ACM TOIS 20(4),
    2002). Position ``i`` is the column (padding and repeated ids keep their position and bring
    no gain); the ideal puts ``min(k, |rel|)`` hits at the top.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, best first, padded with -1.
    relevant : scipy.sparse (R, n)
        Held-out connections of each row's member (nonzero = relevant).
    k : int
        Cut-off, ``>= 1``.

    Returns
    -------
    (R,) float64
        NDCG in [0, 1] per row; NaN where the row has no relevant member.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> slates = np.array([[3, 1, -1], [1, 2, 0]], dtype=np.int32)
    >>> relevant = sp.csr_array(([1.0, 1.0, 1.0], ([0, 0, 1], [1, 2, 1])), shape=(2, 4))
    >>> ndcg_at_k(slates, relevant, k=3).round(4)
    array([0.3869, 1.    ])
    """
    k = _check_k(k)
    hit, n_relevant = _hits(_as_slates(slate_ids), relevant, k=k)
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = hit.astype(np.float64) @ discount[: hit.shape[1]]
    ideal_cum = np.concatenate([[0.0], np.cumsum(discount)])
    idcg = ideal_cum[np.minimum(n_relevant, k)]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = dcg / idcg
    out[n_relevant == 0] = np.nan
    return out


# --------------------------------------------------------------------------------------------
# exposure and reach
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# inequality of outcomes
# --------------------------------------------------------------------------------------------


def gini(values: ArrayLike) -> float:
    r"""Gini coefficient of non-negative outcomes (population form, no small-sample correction).

    With :math:`x_{(1)} \le \dots \le x_{(n)}` sorted ascending,

    .. math:: G = \frac{\sum_{i=1}^{n} (2i - n - 1)\, x_{(i)}}{n \sum_i x_i}
              = \frac{\sum_i \sum_j |x_i - x_j|}{2 n^2 \bar{x}}

    (Gini 1912; sorted form as in Damgaard & Weiner, "Describing inequality in plant size or
    fecundity", Ecology 81(4), 2000). This normalisation ranges from 0 (all equal) to
    :math:`(n - 1)/n` (one member holds everything); it is not rescaled by ``n/(n-1)``. All
    zeros count as equal: ``G = 0``.

    Parameters
    ----------
    values : (n,) array of non-negative numbers, ``n >= 1``

    Returns
    -------
    float in ``[0, (n - 1)/n]``

    Examples
    --------
    >>> gini([1, 1, 1, 1])
    0.0
    >>> gini([0, 0, 0, 8])
    0.75
    """
    x = np.sort(_as_values(values))
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.shape[0]
    weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1
    # Rescale before the weighted sum so very large outcomes do not overflow.
    g = float(weights @ (x / x.max()) / (n * (total / x.max())))
    return min(max(g, 0.0), 1.0)


def _atkinson_rows(x: np.ndarray, epsilon: float) -> np.ndarray:
    """Atkinson index of each row of ``x`` (B, n), non-negative float64."""
    n = x.shape[1]
    out = np.zeros(x.shape[0], dtype=np.float64)
    scale = x.max(axis=1)
    pos = scale > 0  # all-zero rows are equal outcomes: index 0
    if epsilon == 0 or not pos.any():
        return out
    y = x[pos] / scale[pos, None]  # in [0, 1]: the index is scale-invariant
    log_mean = np.log(y.mean(axis=1))
    has_zero = (y == 0).any(axis=1)
    with np.errstate(divide="ignore"):
        log_y = np.log(y)
    if epsilon >= 1:
        # Geometric mean (eps = 1) or a negative power (eps > 1) of a zero outcome is 0, so the
        # equally distributed equivalent is 0 and the index is 1.
        safe = np.where(has_zero[:, None], 0.0, log_y)
        if epsilon == 1:
            log_ede = safe.mean(axis=1)
        else:
            log_ede = (logsumexp((1 - epsilon) * safe, axis=1) - np.log(n)) / (1 - epsilon)
        index = np.where(has_zero, 1.0, 1.0 - np.exp(log_ede - log_mean))
    else:
        # log-sum-exp of (1 - eps) log y: stable power mean; log 0 = -inf contributes 0.
        log_ede = (logsumexp((1 - epsilon) * log_y, axis=1) - np.log(n)) / (1 - epsilon)
        index = 1.0 - np.exp(log_ede - log_mean)
    out[pos] = np.clip(index, 0.0, 1.0)
    return out


def _check_epsilon(epsilon: float) -> float:
    epsilon = float(epsilon)
    if not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon}")
    return epsilon


def atkinson(values: ArrayLike, *, epsilon: float = 0.5) -> float:
    r"""Atkinson inequality index of non-negative outcomes.

    .. math:: A_\varepsilon = 1 - \frac{1}{\bar{x}}
              \Big(\frac{1}{n}\sum_i x_i^{1-\varepsilon}\Big)^{1/(1-\varepsilon)}
              \quad (\varepsilon \ne 1), \qquad
              A_1 = 1 - \frac{(\prod_i x_i)^{1/n}}{\bar{x}}

    (Atkinson, "On the measurement of inequality", J. Econ. Theory 2(3), 1970; used for A/B
    tests of inequality at LinkedIn by Saint-Jacques et al., "Fairness through
    Experimentation", arXiv:2002.05819, 2020). ``epsilon`` is the aversion to inequality
    (0: none, index 0 always).

    Limits: equal outcomes give 0, and so do all zeros (equal, if empty-handed). One member of
    ``n`` holding everything, ``x = (T, 0, ..., 0)``, gives
    :math:`\big(\frac{1}{n}T^{1-\varepsilon}\big)^{1/(1-\varepsilon)} / (T/n)
    = n^{-\varepsilon/(1-\varepsilon)}`, so the maximum is
    :math:`1 - n^{-\varepsilon/(1-\varepsilon)}` for :math:`\varepsilon < 1`; for
    :math:`\varepsilon \ge 1` any zero outcome makes the index 1.

    Parameters
    ----------
    values : (n,) array of non-negative numbers, ``n >= 1``
    epsilon : float, ``>= 0``

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> atkinson([2, 2, 2, 2])
    0.0
    >>> round(atkinson([0, 0, 0, 4], epsilon=0.5), 6)  # 1 - 4 ** -1
    0.75
    >>> atkinson([0, 1, 3], epsilon=1.0)
    1.0
    """
    epsilon = _check_epsilon(epsilon)
    x = _as_values(values)
    return float(_atkinson_rows(x[None, :], epsilon)[0])


def atkinson_bootstrap(
    values: ArrayLike,
    *,
    epsilon: float = 0.5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> tuple[float, float, float]:
    r"""Atkinson index with a percentile bootstrap confidence interval.

    Resamples the ``n`` outcomes with replacement ``n_boot`` times, computes
    :func:`atkinson` of each resample, and returns the ``(1 - c)/2`` and ``(1 + c)/2``
    quantiles (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13), as in
    the inequality A/B tests of Saint-Jacques et al., "Fairness through Experimentation:
    Inequality in A/B testing as an approach to responsible design", arXiv:2002.05819, 2020.
    Resamples are drawn as ``(chunk, n)`` index matrices and evaluated row-wise in one
    vectorised pass per chunk (chunks hold about 4 million cells).

    Parameters
    ----------
    values : (n,) array of non-negative numbers
    epsilon : float
        Inequality aversion, see :func:`atkinson`.
    n_boot : int
        Number of resamples, ``>= 1``.
    confidence : float
        In (0, 1).
    random_state : int, numpy Generator or None
        Seed for reproducible intervals.

    Returns
    -------
    (estimate, low, high) : tuple of float
        ``estimate`` is the index of ``values`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).lognormal(size=500)
    >>> est, low, high = atkinson_bootstrap(x, n_boot=200, random_state=1)
    >>> bool(low <= est <= high)
    True
    """
    epsilon = _check_epsilon(epsilon)
    x = _as_values(values)
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(random_state)
    n = x.shape[0]
    estimate = float(_atkinson_rows(x[None, :], epsilon)[0])
    chunk = max(1, _CHUNK_CELLS // n)
    boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        boot[start : start + size] = _atkinson_rows(x[rng.integers(0, n, size=(size, n))], epsilon)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return estimate, float(low), float(high)


def lorenz_curve(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r"""Lorenz curve of non-negative outcomes.

    Point ``i`` (``0..n``) is :math:`(i/n,\ \sum_{j \le i} x_{(j)} / \sum_j x_j)` with
    outcomes sorted ascending (Lorenz, "Methods of measuring the concentration of wealth",
    JASA 9(70), 1905). The Gini coefficient is twice the area between it and the diagonal. All
    zeros give the diagonal (equal outcomes).

    Parameters
    ----------
    values : (n,) array of non-negative numbers, ``n >= 1``

    Returns
    -------
    population_share, outcome_share : (n + 1,) float64 each, from 0 to 1.

    Examples
    --------
    >>> lorenz_curve([3, 1])
    (array([0. , 0.5, 1. ]), array([0.  , 0.25, 1.  ]))
    """
    x = np.sort(_as_values(values))
    n = x.shape[0]
    population = np.arange(n + 1, dtype=np.float64) / n
    total = x.sum()
    if total == 0:
        return population, population.copy()
    outcome = np.concatenate([[0.0], np.cumsum(x) / total])
    outcome[-1] = 1.0  # exact end point despite rounding in the cumulative sum
    return population, outcome


# --------------------------------------------------------------------------------------------
# group equity
# --------------------------------------------------------------------------------------------


def _group_count(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    return int(len(y_true))


def _group_sum(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(y_true))


def _group_mean(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true))


def _by_group(values: np.ndarray, labels: np.ndarray, metrics: dict) -> pd.DataFrame:
    """Per-group aggregation with fairlearn's MetricFrame, indexed by group label."""
    frame = MetricFrame(
        metrics=metrics, y_true=values, y_pred=values, sensitive_features=labels
    ).by_group
    frame.index = frame.index.astype(str)
    frame.index.name = "group"
    return frame


def group_exposure_table(
    exposure: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20
) -> pd.DataFrame:
    r"""Exposure received per group against the group's share of the population.

    For group ``g`` with :math:`N_g` of the ``N`` members and exposure :math:`E_g` of the
    total ``E``:

    .. math:: \mathrm{ratio}_g = \frac{E_g / E}{N_g / N}

    (1.0: the group is recommended in proportion to its size; the "demographic parity of
    exposure" of Singh & Joachims, "Fairness of Exposure in Rankings", KDD 2018). The harm
    measured is allocation of exposure. Aggregated with ``fairlearn.metrics.MetricFrame``.

    Groups with fewer than ``min_group_size`` members are suppressed: their ``members``,
    shares and ratio are missing, only the label and ``suppressed=True`` remain. Shares stay
    relative to all members, so suppression changes no other row. (With a single suppressed
    group its size can still be inferred from the others' population shares; publish the
    ratio alone where that matters.)

    Parameters
    ----------
    exposure : (n,) array of non-negative numbers
        E.g. :func:`exposure_counts`.
    groups : (n,) array of str
        Group of every member; no missing labels.
    min_group_size : int
        Smallest group whose figures are reported.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by label, with columns ``group`` (str), ``members``
        (nullable Int64), ``population_share``, ``exposure_share``, ``ratio`` (float64; NaN if
        suppressed or if there is no exposure at all) and ``suppressed`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a"] * 3 + ["b"] * 2 + ["c"])
    >>> table = group_exposure_table(np.array([1, 1, 1, 3, 3, 9]), groups, min_group_size=2)
    >>> table[["group", "members", "ratio", "suppressed"]]
      group  members     ratio  suppressed
    0     a        3  0.333333       False
    1     b        2  1.000000       False
    2     c     <NA>       NaN        True
    """
    x = _as_values(exposure)
    labels = _as_labels(groups, n=x.shape[0])
    frame = _by_group(x, labels, {"members": _group_count, "exposure": _group_sum})
    return exposure_table_from_sums(
        frame.index.to_numpy(dtype=object).astype(str),
        frame["members"].to_numpy(dtype=np.int64),
        frame["exposure"].to_numpy(dtype=np.float64),
        n_members=x.shape[0],
        total=float(x.sum()),
        min_group_size=min_group_size,
    )


def exposure_table_from_sums(
    groups: np.ndarray,
    members: np.ndarray,
    exposure: np.ndarray,
    *,
    n_members: int,
    total: float,
    min_group_size: int,
) -> pd.DataFrame:
    """The table of :func:`group_exposure_table` from per-group sums already aggregated elsewhere
    (e.g. on Spark): ``groups`` labels (sorted), their ``members`` counts and ``exposure`` sums,
    the number of members ``n_members`` and the total exposure ``total``."""
    members = np.asarray(members, dtype=np.int64)
    suppressed = members < min_group_size
    with np.errstate(invalid="ignore", divide="ignore"):
        population_share = members / n_members
        exposure_share = np.asarray(exposure, dtype=np.float64) / total
        ratio = exposure_share / population_share
    table = pd.DataFrame(
        {
            "group": np.asarray(groups, dtype=object),
            "members": pd.array(members, dtype="Int64"),
            "population_share": population_share,
            "exposure_share": exposure_share,
            "ratio": ratio,
            "suppressed": suppressed,
        }
    )
    table.loc[suppressed, ["population_share", "exposure_share", "ratio"]] = np.nan
    table["members"] = table["members"].mask(suppressed)
    if suppressed.any():
        _LOGGER.debug("exposure table: %d group(s) suppressed", int(suppressed.sum()))
    return table


def _min_over_max(figures: pd.Series) -> float:
    values = figures.to_numpy(dtype=np.float64)
    if values.shape[0] < 2 or np.isnan(values).any():
        return float("nan")
    high = values.max()
    if high <= 0:
        return float("nan")
    return float(values.min() / high)


def exposure_ratio(exposure: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20) -> float:
    r"""Parity of exposure across groups: the smallest group ratio divided by the largest.

    .. math:: \frac{\min_g \mathrm{ratio}_g}{\max_g \mathrm{ratio}_g}

    over groups that are not suppressed, with :math:`\mathrm{ratio}_g` from
    :func:`group_exposure_table` (the min/max form of fairlearn's
    ``demographic_parity_ratio``). 1.0 is parity, 0 means some group gets no exposure.
    Suppressed groups do not enter; they cannot move the result either, since every ratio
    shares the same ``N / E`` factor.

    Parameters
    ----------
    exposure : (n,) array of non-negative numbers
    groups : (n,) array of str
    min_group_size : int

    Returns
    -------
    float in [0, 1]; NaN with fewer than 2 unsuppressed groups or no exposure at all.

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a", "a", "b", "b"])
    >>> exposure_ratio(np.array([1, 1, 2, 2]), groups, min_group_size=1)
    0.5
    """
    table = group_exposure_table(exposure, groups, min_group_size=min_group_size)
    return _min_over_max(table.loc[~table["suppressed"], "ratio"])


def group_recall_table(
    per_member_recall: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20
) -> pd.DataFrame:
    r"""Mean recall of the ranked members of each group (quality of service).

    .. math:: \mathrm{recall}_g = \frac{1}{|M_g|} \sum_{u \in M_g} \mathrm{recall@}k(u)

    where :math:`M_g` are the members of ``g`` with a recall value (NaN recalls, from members
    without held-out connections, are ignored). The harm measured is quality of service
    (fairlearn user guide, "Types of harms"). Aggregated with ``fairlearn.metrics.MetricFrame``.
    Groups with fewer than ``min_group_size`` members with a recall are suppressed; a group
    whose members all lack a recall appears, suppressed.

    Parameters
    ----------
    per_member_recall : (R,) float array
        E.g. :func:`recall_at_k`, one value per ranked member; NaN allowed.
    groups : (R,) array of str
        Group of each ranked member (``labels[member_rows]``).
    min_group_size : int

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by label: ``group``, ``members`` (nullable Int64, members
        with a recall), ``mean_recall`` (float64) and ``suppressed`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> recall = np.array([0.5, 1.0, np.nan, 0.25, 0.25])
    >>> group_recall_table(recall, np.array(["a", "a", "a", "b", "b"]), min_group_size=2)
      group  members  mean_recall  suppressed
    0     a        2         0.75       False
    1     b        2         0.25       False
    """
    recall = np.asarray(per_member_recall, dtype=np.float64)
    if recall.ndim != 1:
        raise ValueError(f"per_member_recall must be 1-D, got shape {recall.shape}")
    labels = _as_labels(groups, n=recall.shape[0])
    all_groups = np.unique(labels)
    known = ~np.isnan(recall)
    if known.any():
        frame = _by_group(
            recall[known], labels[known], {"members": _group_count, "mean_recall": _group_mean}
        ).reindex(all_groups)
    else:
        frame = pd.DataFrame(
            {"members": np.nan, "mean_recall": np.nan}, index=pd.Index(all_groups)
        )
    members = frame["members"].fillna(0).to_numpy(dtype=np.int64)
    suppressed = members < min_group_size
    table = pd.DataFrame(
        {
            "group": all_groups.astype(object).astype(str),
            "members": pd.array(members, dtype="Int64"),
            "mean_recall": frame["mean_recall"].to_numpy(dtype=np.float64),
            "suppressed": suppressed,
        }
    )
    table.loc[suppressed, "mean_recall"] = np.nan
    table["members"] = table["members"].mask(suppressed)
    return table


def recall_ratio(
    per_member_recall: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20
) -> float:
    r"""Smallest group mean recall divided by the largest.

    .. math:: \frac{\min_g \mathrm{recall}_g}{\max_g \mathrm{recall}_g}

    over groups not suppressed in :func:`group_recall_table` (the ratio form of fairlearn's
    between-group comparisons, e.g. ``MetricFrame.ratio(method="between_groups")``).

    Parameters
    ----------
    per_member_recall : (R,) float array, NaN allowed
    groups : (R,) array of str
    min_group_size : int

    Returns
    -------
    float in [0, 1]; NaN with fewer than 2 unsuppressed groups or when every group's recall is
    0.

    Examples
    --------
    >>> import numpy as np
    >>> recall = np.array([0.5, 1.0, np.nan, 0.25, 0.25])
    >>> recall_ratio(recall, np.array(["a", "a", "a", "b", "b"]), min_group_size=2)
    0.3333333333333333
    """
    table = group_recall_table(per_member_recall, groups, min_group_size=min_group_size)
    return _min_over_max(table.loc[~table["suppressed"], "mean_recall"])


def _group_prefix_counts(
    slates: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """(R, K, G) one-hot group of each valid entry, and (R, K) validity."""
    valid = _valid_mask(slates)
    entry_codes = np.where(valid, codes[np.maximum(slates, 0)], -1)
    onehot = entry_codes[:, :, None] == np.arange(n_groups)[None, None, :]
    return onehot, valid


def skew_at_k(
    slate_ids: ArrayLike,
    groups: ArrayLike,
    target_shares: Mapping[str, float],
    *,
    k: int,
    eps: float = 1e-6,
) -> pd.DataFrame:
    r"""Skew of each group in the top ``k``, averaged over slates.

    For slate ``r`` with group shares :math:`p_{r,g}` among its top ``k`` (padding excluded) and
    target shares :math:`q_g`,

    .. math:: \mathrm{Skew}_g@k(r) = \ln \frac{p_{r,g} + \epsilon}{q_g + \epsilon}

    (Geyik, Ambler & Kenthapadi, "Fairness-Aware Ranking in Search & Recommendation Systems
    with Application to LinkedIn Talent Search", KDD 2019). The paper's ratio is unbounded when
    a share is 0; adding ``eps`` to both shares keeps it finite (this module's choice): a group
    absent from a slate with target 0.5 scores about ``ln(2e-6) = -13.1``. Negative: the group
    is under-represented; positive: over-represented. Empty slates are left out.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.
    groups : (n,) array of str
        Group of every member; every label needs a target share.
    target_shares : mapping of group to share
        Non-negative, summing to 1 (e.g. population shares).
    k : int
    eps : float
        Smoothing added to both shares.

    Returns
    -------
    pandas.DataFrame
        One row per group of ``target_shares`` (in its order): ``group``, ``target_share``,
        ``mean_share`` (mean of :math:`p_{r,g}`), ``skew`` (mean of the per-slate skew); NaN
        figures if every slate is empty.

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a", "a", "b", "b"])
    >>> table = skew_at_k(np.array([[0, 1], [0, 2]]), groups, {"a": 0.5, "b": 0.5}, k=2)
    >>> table.round(3)
      group  target_share  mean_share   skew
    0     a           0.5        0.75  0.347
    1     b           0.5        0.25 -6.561
    """
    k = _check_k(k)
    labels = _as_labels(groups)
    names, target, codes = _target_codes(labels, target_shares)
    slates = _as_slates(slate_ids, n_members=labels.shape[0])[:, :k]
    onehot, valid = _group_prefix_counts(slates, codes, len(names))
    length = valid.sum(axis=1)
    counted = length > 0
    share = onehot[counted].sum(axis=1) / length[counted, None]
    skew = np.log((share + eps) / (target[None, :] + eps))
    with np.errstate(invalid="ignore"):
        mean_share = share.mean(axis=0) if counted.any() else np.full(len(names), np.nan)
        mean_skew = skew.mean(axis=0) if counted.any() else np.full(len(names), np.nan)
    return pd.DataFrame(
        {"group": names, "target_share": target, "mean_share": mean_share, "skew": mean_skew}
    )


def ndkl(
    slate_ids: ArrayLike,
    groups: ArrayLike,
    target_shares: Mapping[str, float],
    *,
    k: int,
) -> np.ndarray:
    r"""Normalised discounted KL divergence of each slate from the target group shares.

    .. math:: \mathrm{NDKL}(\tau) = \frac{1}{Z} \sum_{i=1}^{|\tau|} \frac{1}{\log_2(i + 1)}
              \, d_{KL}(D_{\tau_i} \,\|\, D), \qquad Z = \sum_{i=1}^{|\tau|} \frac{1}{\log_2(i+1)}

    where :math:`D_{\tau_i}` is the group distribution of the top ``i`` and ``D`` the target
    (Geyik, Ambler & Kenthapadi, KDD 2019, eq. 4). :math:`|\tau| = \min(k, \text{slate
    length})`; padding and repeats are skipped, so positions count introductions. KL uses the
    natural log and :math:`0 \ln 0 = 0`; a group present in a prefix with target share 0 makes
    the divergence infinite. 0 for a slate matching the target at every prefix, positive
    otherwise.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.
    groups : (n,) array of str
        Group of every member; every label needs a target share.
    target_shares : mapping of group to share, summing to 1
    k : int

    Returns
    -------
    (R,) float64
        NDKL per slate; NaN for an empty slate.

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a", "a", "b", "b"])
    >>> ndkl(np.array([[0, 2], [0, 1]]), groups, {"a": 1.0, "b": 0.0}, k=2)
    array([inf,  0.])
    >>> ndkl(np.array([[0, 2]]), groups, {"a": 0.5, "b": 0.5}, k=2).round(4)
    array([0.425])
    """
    k = _check_k(k)
    labels = _as_labels(groups)
    names, target, codes = _target_codes(labels, target_shares)
    slates = _as_slates(slate_ids, n_members=labels.shape[0])[:, :k]
    n_slates, width = slates.shape
    n_groups = len(names)
    out = np.full(n_slates, np.nan)
    if width == 0:
        return out
    discount_by_rank = np.concatenate([[0.0], 1.0 / np.log2(np.arange(2, width + 2))])
    z_by_length = np.cumsum(discount_by_rank)
    with np.errstate(divide="ignore"):
        log_target = np.log(target)
    chunk = max(1, _CHUNK_CELLS // max(1, width * n_groups))
    for start in range(0, n_slates, chunk):
        onehot, valid = _group_prefix_counts(slates[start : start + chunk], codes, n_groups)
        rank = np.cumsum(valid, axis=1)  # (C, K): prefix length at each valid position
        prefix = np.cumsum(onehot, axis=1) / np.maximum(rank, 1)[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = prefix * (np.log(prefix) - log_target)
        kl = np.where(prefix > 0, terms, 0.0).sum(axis=2)  # (C, K), 0 ln 0 = 0
        weighted = np.where(valid, kl * discount_by_rank[rank], 0.0).sum(axis=1)
        length = rank[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(
                length > 0, weighted / z_by_length[length], np.nan
            )
    return out
