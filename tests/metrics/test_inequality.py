"""Gini, Atkinson and the Lorenz curve: limits, known values, the bootstrap, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.metrics import _inequality, atkinson, atkinson_bootstrap, gini, lorenz_curve


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


# ------------------------------------------------------------------------------------------
# frequency weights: a histogram of outcomes gives the index of the expanded outcomes
# ------------------------------------------------------------------------------------------

EPSILONS = [0.0, 0.25, 0.5, 1.0, 2.0]

# (value, count) pairs: integer outcomes like exposure counts, or any non-negative float.
histogram_rows = st.tuples(
    st.one_of(
        st.integers(0, 50).map(float),
        st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_subnormal=False),
    ),
    st.integers(1, 30),
)

LIMIT_CASES = {
    "all equal": ([5.0], [7]),
    "all equal, split": ([3.0, 3.0], [2, 5]),
    "zeros": ([0.0], [4]),
    "zeros, split": ([0.0, 0.0, 0.0], [1, 2, 3]),
    "single value": ([9.0], [1]),
    "single member of each": ([1.0, 4.0], [1, 1]),
    "one holds everything": ([0.0, 8.0], [3, 1]),
}


def _histogram(rows: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([v for v, _ in rows]), np.array([c for _, c in rows], dtype=np.int64)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(histogram_rows, min_size=1, max_size=30), data=st.data())
def test_weighted_equals_unweighted_on_expanded_values(
    rows: list[tuple[float, int]], data: st.DataObject
) -> None:
    values, counts = _histogram(rows)
    # a zero count leaves its value out, as if it were not in the histogram
    zeroed = data.draw(st.lists(st.integers(0, len(rows) - 1), max_size=len(rows) - 1))
    counts[np.array(zeroed, dtype=np.intp)] = 0
    expanded = np.repeat(values, counts)
    assert gini(values, weights=counts) == pytest.approx(gini(expanded), abs=1e-12)
    for eps in EPSILONS:
        assert atkinson(values, epsilon=eps, weights=counts) == pytest.approx(
            atkinson(expanded, epsilon=eps), abs=1e-12
        )
    # scaling every weight changes nothing: non-integer weights read as population shares
    shares = counts / counts.sum()
    assert gini(values, weights=shares) == pytest.approx(gini(expanded), abs=1e-12)
    assert atkinson(values, weights=shares) == pytest.approx(atkinson(expanded), abs=1e-12)


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_weighted_limit_cases(case: str) -> None:
    values, counts = (np.array(a) for a in LIMIT_CASES[case])
    expanded = np.repeat(values, counts)
    got = gini(values, weights=counts)
    assert got == pytest.approx(gini(expanded), abs=1e-12)
    for eps in EPSILONS:
        got = atkinson(values, epsilon=eps, weights=counts)
        assert got == pytest.approx(atkinson(expanded, epsilon=eps), abs=1e-12)
    if np.unique(expanded).size == 1:  # equal outcomes, zeros included: exactly 0
        assert gini(values, weights=counts) == 0.0
        assert atkinson(values, weights=counts) == pytest.approx(0.0, abs=1e-15)


def test_weighted_known_values() -> None:
    assert gini([0, 8], weights=[3, 1]) == 0.75
    assert gini([1, 4], weights=[1, 1]) == pytest.approx(0.3)
    assert atkinson([1, 4], epsilon=1.0, weights=[2, 2]) == pytest.approx(0.2)
    # a zero outcome held by anyone makes the index 1 at eps >= 1; held by no one, it is left out
    assert atkinson([0, 1, 3], epsilon=1.0, weights=[1, 1, 1]) == 1.0
    assert atkinson([0, 1, 3], epsilon=1.0, weights=[0, 2, 2]) == pytest.approx(
        atkinson([1, 3], epsilon=1.0)
    )
    assert gini([5, 0], weights=[2, 0]) == 0.0


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0, 0], "all zero"),
        ([1, -1], "non-negative"),
        ([1, np.nan], "finite"),
        ([1, 2, 3], "shape"),
        ([[1, 2]], "shape"),
    ],
)
def test_weights_errors(weights: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gini([1.0, 2.0], weights=weights)
    with pytest.raises(ValueError, match=match):
        atkinson([1.0, 2.0], weights=weights)
