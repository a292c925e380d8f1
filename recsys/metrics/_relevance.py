"""Relevance: how many of each member's held-out connections a slate recovers, and how high."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from recsys.metrics._checks import _as_binary_csr, _as_slates, _check_k, _valid_mask


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
