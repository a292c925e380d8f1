"""Exposure and reach: counts, coverage, bridges, two hops, the +1 balance, communities reached."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.metrics import (
    bridge_rate,
    coverage,
    exposure_counts,
    max_inbound_share,
    network_size_tiers,
    plus_one_balance,
    reach,
    within_two_hops,
)


def _graph(edges: list[tuple[int, int]], n: int) -> sp.csr_matrix:
    a, b = np.array(edges).T
    rows, cols = np.concatenate([a, b]), np.concatenate([b, a])
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))


@pytest.fixture
def path_graph() -> sp.csr_matrix:
    """0 - 1 - 2 - 3 - 4 - 5, and 6 on its own."""
    return _graph([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], 7)


SLATES = np.array([[1, 2, -1], [2, 0, 3], [2, 2, -1], [-1, -1, -1]], dtype=np.int32)


def test_exposure_counts_coverage_max_inbound() -> None:
    np.testing.assert_array_equal(exposure_counts(SLATES, n_members=6), [1, 1, 3, 1, 0, 0])
    np.testing.assert_array_equal(exposure_counts(SLATES, n_members=6, k=1), [0, 1, 2, 0, 0, 0])
    assert exposure_counts(SLATES, n_members=6).dtype == np.int64
    assert coverage(SLATES, n_members=6) == pytest.approx(4 / 6)
    assert coverage(SLATES[:, :1], n_members=6) == pytest.approx(2 / 6)
    assert max_inbound_share(SLATES) == pytest.approx(3 / 4)
    assert max_inbound_share(np.full((2, 3), -1)) == 0.0
    assert math.isnan(max_inbound_share(np.empty((0, 3), dtype=np.int32)))
    with pytest.raises(ValueError):
        exposure_counts(SLATES, n_members=3)


def test_bridge_rate_known_answer_ignores_padding() -> None:
    communities = np.array(["a", "a", "b", "b"])
    slates = np.array([[1, 2, -1], [3, -1, -1]])
    assert bridge_rate(np.array([0, 2]), slates, communities) == pytest.approx(1 / 3)
    # adding padding columns changes nothing
    padded = np.hstack([slates, np.full((2, 4), -1)])
    assert bridge_rate(np.array([0, 2]), padded, communities) == pytest.approx(1 / 3)
    assert math.isnan(bridge_rate(np.array([0]), np.array([[-1, -1]]), communities))
    assert bridge_rate(np.array([0]), np.array([[2, 3]]), np.array([0, 0, 1, 1])) == 1.0


def test_within_two_hops_path(path_graph: sp.csr_matrix) -> None:
    u = np.array([0, 0, 0, 0, 2, 1, 5, 6, 6, 3])
    v = np.array([1, 2, 3, 0, 4, 4, 3, 6, 0, 5])
    expected = [True, True, False, True, True, False, True, True, False, True]
    np.testing.assert_array_equal(within_two_hops(path_graph, u, v), expected)
    np.testing.assert_array_equal(within_two_hops(path_graph, u, v, chunk_size=3), expected)
    assert within_two_hops(path_graph, u[:0], v[:0]).shape == (0,)


def test_within_two_hops_matches_dense_reference() -> None:
    rng = np.random.default_rng(7)
    n = 30
    upper = np.triu(rng.random((n, n)) < 0.08, 1)
    dense = (upper | upper.T).astype(np.float32)
    reference = (dense + dense @ dense + np.eye(n)) > 0
    u, v = rng.integers(0, n, 400), rng.integers(0, n, 400)
    got = within_two_hops(sp.csr_matrix(dense), u, v, chunk_size=64)
    np.testing.assert_array_equal(got, reference[u, v])


def test_plus_one_balance_path(path_graph: sp.csr_matrix) -> None:
    members = np.array([0, 0, 0, 0])
    slates = np.array(
        [
            [1, 3, -1],  # inside 1, outside 1: balanced
            [1, 2, 4],  # inside 2, outside 1: not balanced
            [3, 4, -1],  # outside 2: balanced
            [-1, -1, -1],  # no introductions: not counted
        ]
    )
    assert plus_one_balance(members, slates, path_graph) == pytest.approx(2 / 3)
    mask = np.array([True, True, False, True])
    assert plus_one_balance(members, slates, path_graph, mask=mask) == pytest.approx(1 / 2)
    only_empty = np.array([False, False, False, True])
    assert math.isnan(plus_one_balance(members, slates, path_graph, mask=only_empty))


def test_reach_hand_made(path_graph: sp.csr_matrix) -> None:
    communities = np.array(["a", "a", "b", "b", "c", "c", "d"])
    members = np.array([1, 0, 5, 6, 6])
    slates = np.array(
        [
            [4, 5, -1],  # neighbours 0 (a), 2 (b); adds c
            [1, -1, -1],  # neighbour 1 (a); already connected
            [0, 2, 3],  # neighbour 4 (c); adds a, b
            [-1, -1, -1],  # isolated, nothing shown
            [6, 0, -1],  # isolated; own row adds d, 0 adds a
        ]
    )
    before, after = reach(members, slates, path_graph, communities)
    np.testing.assert_array_equal(before, [2, 1, 1, 0, 0])
    np.testing.assert_array_equal(after, [3, 1, 3, 0, 2])
    assert before.dtype == after.dtype == np.int64


def test_network_size_tiers() -> None:
    tiers = network_size_tiers(np.array([0, 4, 5, 19, 20, 300]))
    assert tiers.dtype == object
    assert list(tiers) == ["small", "small", "medium", "medium", "large", "large"]
    assert list(network_size_tiers([1, 2, 3], thresholds=(2, 2))) == ["small", "large", "large"]
    with pytest.raises(ValueError):
        network_size_tiers([1], thresholds=(5, 2))


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 30),
    n_rows=st.integers(0, 12),
    width=st.integers(0, 6),
    k=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_exposure_counts_sum_to_entries(
    n: int, n_rows: int, width: int, k: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    slates = np.full((n_rows, width), -1, dtype=np.int32)
    for r in range(n_rows):
        length = rng.integers(0, min(width, n) + 1)
        slates[r, :length] = rng.choice(n, size=length, replace=False)
    assert exposure_counts(slates, n_members=n).sum() == np.count_nonzero(slates >= 0)
    assert exposure_counts(slates, n_members=n, k=k).sum() == np.count_nonzero(slates[:, :k] >= 0)
    assert 0.0 <= coverage(slates, n_members=n) <= 1.0
