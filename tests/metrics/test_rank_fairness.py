"""Skew at k and NDKL: known values, zero at the target, non-negative on random slates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.metrics import ndkl, skew_at_k


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
