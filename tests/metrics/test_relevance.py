"""Recall and NDCG at k: hand-computed slates, a plain-loop reference, input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.metrics import ndcg_at_k, recall_at_k

LOG2_3 = math.log2(3)


def _relevant(rows: list[list[int]], n: int) -> sp.csr_array:
    r = [i for i, cols in enumerate(rows) for _ in cols]
    c = [j for cols in rows for j in cols]
    return sp.csr_array((np.ones(len(c)), (r, c)), shape=(len(rows), n), dtype=np.float32)


def test_recall_hand_computed() -> None:
    slates = np.array(
        [
            [3, 1, -1, -1],  # relevant {1, 2}: one of two
            [0, 2, 4, 5],  # relevant {4}: found at position 3
            [1, 2, 3, -1],  # nothing relevant: NaN
            [0, 1, 5, 6],  # relevant {0, 1, 2}: more than k
            [1, 1, 2, -1],  # relevant {1}: repeats count once
        ],
        dtype=np.int32,
    )
    relevant = _relevant([[1, 2], [4], [], [0, 1, 2], [1]], n=7)
    np.testing.assert_allclose(recall_at_k(slates, relevant, k=2), [0.5, 0.0, np.nan, 2 / 3, 1.0])
    np.testing.assert_allclose(recall_at_k(slates, relevant, k=3), [0.5, 1.0, np.nan, 2 / 3, 1.0])
    # k beyond the slate width reads the whole slate
    np.testing.assert_allclose(recall_at_k(slates, relevant, k=10), [0.5, 1.0, np.nan, 2 / 3, 1.0])
    assert recall_at_k(slates, relevant, k=2).dtype == np.float64


def test_ndcg_hand_computed() -> None:
    slates = np.array([[3, 1, -1], [2, 0, 4], [1, 2, 3], [0, 1, 5], [4, -1, -1]], np.int32)
    relevant = _relevant([[1, 2], [0, 4], [], [0, 1, 2], [4]], n=6)
    got = ndcg_at_k(slates, relevant, k=3)
    expected = [
        (1 / LOG2_3) / (1 + 1 / LOG2_3),
        (1 / LOG2_3 + 1 / 2) / (1 + 1 / LOG2_3),
        np.nan,
        (1 + 1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2),
        1.0,
    ]
    np.testing.assert_allclose(got, expected)
    # at k=2 the ideal holds min(2, |relevant|) hits
    np.testing.assert_allclose(ndcg_at_k(slates, relevant, k=2)[3], 1.0)
    np.testing.assert_allclose(
        ndcg_at_k(slates, relevant, k=2)[1], (1 / LOG2_3) / (1 + 1 / LOG2_3)
    )


def test_recall_and_ndcg_match_a_plain_loop() -> None:
    rng = np.random.default_rng(3)
    n, n_rows, width = 40, 25, 8
    slates = np.array([rng.permutation(n)[:width] for _ in range(n_rows)], dtype=np.int32)
    slates[rng.random(slates.shape) < 0.2] = -1
    dense = rng.random((n_rows, n)) < 0.1
    relevant = sp.csr_array(dense.astype(np.float32))
    for k in (1, 5, 8):
        recall, ndcg = [], []
        for r in range(n_rows):
            rel = set(np.flatnonzero(dense[r]))
            top = [int(j) for j in slates[r, :k]]
            gains = [1.0 if j in rel else 0.0 for j in top]
            dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
            idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
            recall.append(sum(gains) / len(rel) if rel else np.nan)
            ndcg.append(dcg / idcg if rel else np.nan)
        np.testing.assert_allclose(recall_at_k(slates, relevant, k=k), recall)
        np.testing.assert_allclose(ndcg_at_k(slates, relevant, k=k), ndcg)


def test_relevance_input_errors() -> None:
    relevant = _relevant([[1]], n=3)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(np.array([[1]]), relevant, k=0)
    with pytest.raises(ValueError, match="member row 5"):
        recall_at_k(np.array([[5]]), relevant, k=1)
    with pytest.raises(ValueError, match="rows"):
        ndcg_at_k(np.array([[1], [2]]), relevant, k=1)
    with pytest.raises(ValueError, match="padding"):
        recall_at_k(np.array([[-2]]), relevant, k=1)
