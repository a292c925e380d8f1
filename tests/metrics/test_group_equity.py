"""Exposure and recall per group: parity, known values, small-group suppression."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.metrics import exposure_ratio, group_exposure_table, group_recall_table, recall_ratio


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
