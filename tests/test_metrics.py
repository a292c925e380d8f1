"""Tests for recsys.metrics: hand-made slates with hand-computed answers, limits, properties."""

from __future__ import annotations

import doctest
import importlib
import math
import pkgutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import recsys.metrics
from recsys.metrics import (
    _inequality,
    atkinson,
    atkinson_bootstrap,
    bridge_rate,
    coverage,
    exposure_counts,
    exposure_ratio,
    gini,
    group_exposure_table,
    group_recall_table,
    lorenz_curve,
    max_inbound_share,
    ndcg_at_k,
    ndkl,
    network_size_tiers,
    plus_one_balance,
    reach,
    recall_at_k,
    recall_ratio,
    skew_at_k,
    within_two_hops,
)

LOG2_3 = math.log2(3)
MODULES = [
    importlib.import_module(f"recsys.metrics.{info.name}")
    for info in pkgutil.iter_modules(recsys.metrics.__path__)
]


def _relevant(rows: list[list[int]], n: int) -> sp.csr_array:
    r = [i for i, cols in enumerate(rows) for _ in cols]
    c = [j for cols in rows for j in cols]
    return sp.csr_array((np.ones(len(c)), (r, c)), shape=(len(rows), n), dtype=np.float32)


def _graph(edges: list[tuple[int, int]], n: int) -> sp.csr_matrix:
    a, b = np.array(edges).T
    rows, cols = np.concatenate([a, b]), np.concatenate([b, a])
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))


@pytest.fixture
def path_graph() -> sp.csr_matrix:
    """0 - 1 - 2 - 3 - 4 - 5, and 6 on its own."""
    return _graph([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], 7)


def test_docstring_examples_run() -> None:
    attempted = 0
    for module in MODULES:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted > 20


# ------------------------------------------------------------------------------------------
# relevance
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# exposure and reach
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# inequality
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 10, 1000])
def test_gini_limits(n: int) -> None:
    assert gini(np.full(n, 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert gini(np.zeros(n)) == 0.0
    one_has_all = np.zeros(n)
    one_has_all[-1] = 7.0
    assert gini(one_has_all) == pytest.approx((n - 1) / n)


def test_gini_known_values() -> None:
    assert gini([1, 4]) == pytest.approx(0.3)
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean())
    assert gini(x) == pytest.approx(pairwise)


@pytest.mark.parametrize("epsilon", [0.0, 0.25, 0.5, 1.0, 2.0])
def test_atkinson_equal_and_zero_outcomes(epsilon: float) -> None:
    assert atkinson(np.full(9, 2.5), epsilon=epsilon) == pytest.approx(0.0, abs=1e-12)
    assert atkinson(np.zeros(9), epsilon=epsilon) == 0.0


@pytest.mark.parametrize("n", [2, 5, 100])
@pytest.mark.parametrize("epsilon", [0.25, 0.5, 0.75, 1.0, 2.0])
def test_atkinson_maximum_one_holds_everything(n: int, epsilon: float) -> None:
    x = np.zeros(n)
    x[0] = 42.0
    expected = 1.0 - n ** (-epsilon / (1 - epsilon)) if epsilon < 1 else 1.0
    assert atkinson(x, epsilon=epsilon) == pytest.approx(expected)


def test_atkinson_known_values_and_errors() -> None:
    # mean 2.5; power means: ((1 + 2) / 2) ** 2 = 2.25, geometric 2, harmonic 1.6
    assert atkinson([1, 4], epsilon=0.5) == pytest.approx(0.1)
    assert atkinson([1, 4], epsilon=1.0) == pytest.approx(0.2)
    assert atkinson([1, 4], epsilon=2.0) == pytest.approx(0.36)
    assert atkinson([1, 4], epsilon=0.0) == 0.0
    with pytest.raises(ValueError):
        atkinson([1, -1])
    with pytest.raises(ValueError):
        atkinson([1, 2], epsilon=-0.5)
    with pytest.raises(ValueError):
        gini([])
    with pytest.raises(ValueError):
        gini([1.0, np.nan])


def test_atkinson_rows_matches_scalar_formula() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(6, 50))
    x[0, :3] = 0.0
    for eps in (0.5, 1.0, 1.5):
        got = _inequality._atkinson_rows(x, eps)
        for row, value in zip(x, got):
            mu = row.mean()
            if eps == 1:
                ede = np.exp(np.mean(np.log(row))) if row.min() > 0 else 0.0
            elif eps > 1 and row.min() == 0:
                ede = 0.0
            else:
                ede = np.mean(row ** (1 - eps)) ** (1 / (1 - eps))
            assert value == pytest.approx(1 - ede / mu)


def test_atkinson_bootstrap_contains_estimate_and_is_deterministic() -> None:
    x = np.random.default_rng(11).lognormal(sigma=0.8, size=400)
    est, low, high = atkinson_bootstrap(x, n_boot=300, random_state=0)
    assert est == pytest.approx(atkinson(x))
    assert 0 <= low <= est <= high <= 1
    assert atkinson_bootstrap(x, n_boot=300, random_state=0) == (est, low, high)
    assert atkinson_bootstrap(x, n_boot=300, random_state=1) != (est, low, high)
    narrow = atkinson_bootstrap(x, n_boot=300, confidence=0.5, random_state=0)
    assert low <= narrow[1] <= narrow[2] <= high


def test_atkinson_bootstrap_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(2).exponential(size=200)
    monkeypatch.setattr(_inequality, "_CHUNK_CELLS", 2_000)  # 10 resamples per chunk
    est, low, high = atkinson_bootstrap(x, epsilon=1.0, n_boot=95, random_state=5)
    assert low <= est <= high
    assert atkinson_bootstrap(x, epsilon=1.0, n_boot=95, random_state=5) == (est, low, high)
    # equal outcomes: every resample is equal too
    assert atkinson_bootstrap(np.ones(50), n_boot=20, random_state=0) == (0.0, 0.0, 0.0)


def test_lorenz_curve() -> None:
    pop, share = lorenz_curve([4, 0, 1, 5])
    np.testing.assert_allclose(pop, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(share, [0, 0, 0.1, 0.5, 1])
    # Gini = 1 - 2 * area under the (piecewise linear) Lorenz curve
    area = np.sum(np.diff(pop) * (share[1:] + share[:-1]) / 2)
    assert gini([4, 0, 1, 5]) == pytest.approx(1 - 2 * area)
    pop, share = lorenz_curve(np.zeros(3))
    np.testing.assert_allclose(share, pop)
    assert share[0] == 0 and share[-1] == 1


outcomes = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_subnormal=False),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(values=outcomes, eps=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
def test_inequality_in_unit_interval(values: list[float], eps: float) -> None:
    assert 0.0 <= gini(values) <= 1.0
    assert 0.0 <= atkinson(values, epsilon=eps) <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    values=outcomes,
    eps=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_inequality_permutation_and_scale_invariant(
    values: list[float], eps: float, scale: float, seed: int
) -> None:
    x = np.array(values)
    shuffled = np.random.default_rng(seed).permutation(x)
    assert gini(shuffled) == pytest.approx(gini(x), abs=1e-9)
    assert atkinson(shuffled, epsilon=eps) == pytest.approx(atkinson(x, epsilon=eps), abs=1e-9)
    assert gini(scale * x) == pytest.approx(gini(x), abs=1e-9)
    assert atkinson(scale * x, epsilon=eps) == pytest.approx(atkinson(x, epsilon=eps), abs=1e-9)


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


# ------------------------------------------------------------------------------------------
# group equity
# ------------------------------------------------------------------------------------------


def _labels(**sizes: int) -> np.ndarray:
    return np.concatenate([np.full(size, name, dtype=object) for name, size in sizes.items()])


def test_exposure_ratio_parity_and_known_value() -> None:
    groups = _labels(a=30, b=20)
    # proportional to population (unequal within group, equal group means)
    proportional = np.concatenate([np.tile([1.0, 3.0], 15), np.full(20, 2.0)])
    assert exposure_ratio(proportional, groups) == pytest.approx(1.0)
    exposure = np.concatenate([np.ones(30), np.full(20, 3.0)])
    table = group_exposure_table(exposure, groups)
    assert list(table.columns) == [
        "group",
        "members",
        "population_share",
        "exposure_share",
        "ratio",
        "suppressed",
    ]
    a, b = table.iloc[0], table.iloc[1]
    assert (a["group"], a["members"], b["members"]) == ("a", 30, 20)
    assert a["population_share"] == pytest.approx(0.6)
    assert a["exposure_share"] == pytest.approx(30 / 90)
    assert b["ratio"] == pytest.approx((60 / 90) / 0.4)
    assert exposure_ratio(exposure, groups) == pytest.approx(1 / 3)
    # a group with no exposure at all
    starved = np.concatenate([np.zeros(30), np.ones(20)])
    assert exposure_ratio(starved, groups) == 0.0


def test_exposure_suppression_small_group() -> None:
    groups = _labels(a=30, b=20, c=5)
    exposure = np.concatenate([np.ones(30), np.full(20, 3.0), np.full(5, 100.0)])
    table = group_exposure_table(exposure, groups, min_group_size=20)
    c = table.set_index("group").loc["c"]
    assert bool(c["suppressed"])
    assert pd.isna(c["members"])
    assert c[["population_share", "exposure_share", "ratio"]].isna().all()
    assert not table.loc[table["group"] != "c", "suppressed"].any()
    # the suppressed group cannot move the ratio
    assert exposure_ratio(exposure, groups, min_group_size=20) == pytest.approx(1 / 3)
    # ... but would, if it were reported
    assert exposure_ratio(exposure, groups, min_group_size=5) < 0.05


def test_exposure_ratio_one_group_or_no_exposure_is_nan() -> None:
    assert math.isnan(exposure_ratio(np.ones(30), _labels(a=30)))
    assert math.isnan(exposure_ratio(np.ones(35), _labels(a=30, b=5)))
    assert math.isnan(exposure_ratio(np.zeros(50), _labels(a=30, b=20)))
    with pytest.raises(ValueError, match="missing"):
        exposure_ratio(np.ones(3), np.array(["a", None, "b"], dtype=object))


def test_recall_ratio_and_table() -> None:
    recall = np.concatenate([np.full(20, 0.5), np.full(5, np.nan), np.full(25, 0.25)])
    groups = _labels(a=25, b=25)
    assert recall_ratio(recall, groups) == pytest.approx(0.5)
    table = group_recall_table(recall, groups)
    assert list(table["members"]) == [20, 25]  # NaN recalls do not count as members
    np.testing.assert_allclose(table["mean_recall"], [0.5, 0.25])
    # group a has only 20 members with a recall: at min_group_size=21 one group is left
    assert math.isnan(recall_ratio(recall, groups, min_group_size=21))
    # small group with recall 0 is suppressed and does not affect the ratio
    recall_c = np.concatenate([recall, np.zeros(3), np.full(4, np.nan)])
    groups_c = np.concatenate([groups, _labels(c=3, d=4)])
    assert recall_ratio(recall_c, groups_c) == pytest.approx(0.5)
    table = group_recall_table(recall_c, groups_c).set_index("group")
    assert table.loc[["c", "d"], "suppressed"].all()
    assert table.loc[["c", "d"], ["members", "mean_recall"]].isna().all().all()


def test_skew_at_k_known_values() -> None:
    groups = np.array(["a", "a", "b", "b"])
    slates = np.array([[0, 1, 2], [0, 2, -1], [-1, -1, -1]])
    table = skew_at_k(slates, groups, {"a": 0.5, "b": 0.5}, k=2, eps=1e-6)
    assert list(table["group"]) == ["a", "b"]
    np.testing.assert_allclose(table["mean_share"], [0.75, 0.25])
    eps = 1e-6
    expected_a = (math.log((1 + eps) / (0.5 + eps)) + 0.0) / 2
    expected_b = (math.log(eps / (0.5 + eps)) + 0.0) / 2
    np.testing.assert_allclose(table["skew"], [expected_a, expected_b])
    # a slate matching the target has zero skew
    matched = skew_at_k(np.array([[0, 2]]), groups, {"a": 0.5, "b": 0.5}, k=2)
    np.testing.assert_allclose(matched["skew"], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="no target share"):
        skew_at_k(slates, groups, {"a": 1.0}, k=2)
    with pytest.raises(ValueError, match="sum to 1"):
        skew_at_k(slates, groups, {"a": 0.5, "b": 0.6}, k=2)


def test_ndkl_zero_when_matching_every_prefix_positive_otherwise() -> None:
    groups = np.array(["a", "a", "a", "b", "b", "c"])
    target = {"a": 1.0, "b": 0.0, "c": 0.0}
    got = ndkl(np.array([[0, 1, 2], [0, -1, -1], [0, 0, 1]]), groups, target, k=3)
    np.testing.assert_allclose(got, 0.0, atol=1e-12)
    # half/half target: "a b a b" matches at even prefixes only
    half = {"a": 0.5, "b": 0.5, "c": 0.0}
    slates = np.array([[0, 3, 1, 4], [0, 1, 3, 4], [-1, -1, -1, -1]])
    got = ndkl(slates, groups, half, k=4)
    assert 0 < got[0] < got[1]
    assert math.isnan(got[2])
    # hand-computed first slate: KL at prefixes 1..4 is ln 2, 0, KL((2/3, 1/3) || half), 0
    kl3 = (2 / 3) * math.log(4 / 3) + (1 / 3) * math.log(2 / 3)
    weights = [1 / math.log2(i + 1) for i in range(1, 5)]
    expected = (weights[0] * math.log(2) + weights[2] * kl3) / sum(weights)
    assert got[0] == pytest.approx(expected)
    # a group whose target is zero makes the divergence infinite
    assert np.isinf(ndkl(np.array([[5]]), groups, half, k=1)[0])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6))
def test_ndkl_non_negative(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["x", "y", "z"], size=12)
    slates = np.array([rng.permutation(12)[:6] for _ in range(5)])
    got = ndkl(slates, groups, {"x": 0.2, "y": 0.3, "z": 0.5}, k=k)
    assert np.all(got >= -1e-12)
