"""Preference lists between numpy and Arrow: one buffer per column, not a Python object per
member."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["list_array", "list_matrix"]


def list_array(matrix: np.ndarray) -> pa.ListArray:
    """(n, L) array → Arrow list<L values> per row, without a Python object per row."""
    n, width = matrix.shape
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


def list_matrix(column: pa.ChunkedArray, n: int, dtype) -> np.ndarray:
    """Arrow list column of n equal-length lists → (n, L) array."""
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    if n == 0:
        return np.empty((0, 0), dtype=dtype)
    if len(values) % n:
        raise RuntimeError(
            f"Spark returned lists of unequal length ({len(values)} values for {n} members)"
        )
    return np.asarray(values, dtype=dtype).reshape(n, len(values) // n)
