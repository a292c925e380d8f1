"""Input checks shared by the metrics: slates, member rows, cut-offs, outcomes, group labels.

Each helper returns its input in the one dtype and shape the metrics compute on, or raises a
``ValueError``/``TypeError`` that names the argument and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

# Upper bound on the number of float64 cells materialised at once by the chunked computations
# (bootstrap resamples, NDKL prefix counts): 2**22 cells = 32 MiB per array.
_CHUNK_CELLS = 2**22


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


def _as_weights(weights: ArrayLike, *, n: int) -> np.ndarray:
    """Frequency weights of ``n`` outcomes: 1-D float64, finite, non-negative, not all zero."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have the shape of values, ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite (no NaN or inf)")
    if w.min() < 0:
        raise ValueError("weights must be non-negative")
    if w.sum() == 0:
        raise ValueError("weights are all zero: inequality of no outcomes is undefined")
    return w


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
