import numpy as np
import pandas as pd
import pytest

from recsys._metrics import exposure_ratio
from recsys._tuning import _exposure_ratio, _group_codes, _shortfall


def test_fast_exposure_ratio_equals_the_metric_frame_one():
    rng = np.random.default_rng(0)
    exposure = rng.poisson(3, 4000).astype(float)
    groups = rng.choice(["a", "b", "c", "undisclosed", "tiny"], 4000, p=[0.5, 0.3, 0.18, 0.018, 0.002])
    codes, n = _group_codes(pd.DataFrame({"g": groups}), "g", np.arange(4000))
    assert np.isclose(_exposure_ratio(exposure, codes, n, 20), exposure_ratio(exposure, groups, min_group_size=20))


def test_shortfall_is_zero_when_every_bound_is_met():
    base = {"recall": 0.4, "bridge_rate": 0.1, "exposure_gini": 0.6}
    good = {"recall": 0.39, "bridge_rate": 0.25, "exposure_gini": 0.4, "exposure_ratio/g": 0.9}
    targets = {"min_recall_ratio": 0.95, "min_bridge_gain": 2.0, "max_gini_ratio": 0.7, "min_exposure_ratio": 0.85}
    assert sum(_shortfall(good, base, targets).values()) == 0
    bad = {**good, "recall": 0.3, "exposure_ratio/g": 0.5}
    miss = _shortfall(bad, base, targets)
    assert miss["recall"] > 0 and miss["exposure_ratio/g"] > 0 and miss["exposure_gini"] == 0


def test_fitted_model_reports_its_tuning(fitted):
    model, _, _ = fitted
    report = model.rerank_report_
    from recsys._tuning import DEFAULT_GRID

    assert report["tuned"] and report["settings_tried"] == np.prod([len(v) for v in DEFAULT_GRID.values()])
    assert set(report["params"]) == set(DEFAULT_GRID)
    assert report["params"] == {name: model.rerank_params_[name] for name in report["params"]}
    assert model.rerank_params_["bonus"] == "linear" and 0 < model.rerank_params_["score_scale"] < 1
    assert set(report["bounds_met"]) >= {"recall", "exposure_gini"}
    assert "exposure_ratio/gender" in report["chosen"]


def test_batch_ranking_holds_capacity(fitted):
    model, train, _ = fitted
    rows = np.arange(train.n_members)
    ids, scores = model.rank_batch(rows, k=10)
    cap = model.slate_capacity(train, n_slates=len(rows), k=10)
    counts = np.bincount(ids[ids >= 0], minlength=train.n_members)
    assert (counts <= cap).all()
    for row_ids, row_scores in zip(ids, scores):
        assert (np.diff(row_scores[row_ids >= 0]) <= 1e-7).all()  # scores agree with the order


def test_least_exposed_places_in_batch_and_in_serving(fitted, monkeypatch):
    model, train, _ = fitted
    rows = np.arange(train.n_members)
    monkeypatch.setitem(model.rerank_params_, "floor_slots", 0)
    plain, _ = model.rank_batch(rows, k=10)
    monkeypatch.setitem(model.rerank_params_, "floor_slots", 4)  # two places in a slate of 10
    floored, _ = model.rank_batch(rows, k=10)
    exposure = lambda ids: np.bincount(ids[ids >= 0], minlength=train.n_members)  # noqa: E731
    from recsys._metrics import gini

    # the first eight places are the capacity assignment's for slates of eight
    from recsys._rerank import assign_with_capacity, plus_one_quota

    ids, sc, out = model.preference_lists(rows, k=10)
    cap = model.slate_capacity(train, n_slates=len(rows), k=10)
    quota = plus_one_quota(ids, out, model.reranker_.required_rows(rows), 10)
    head, _ = assign_with_capacity(ids, sc, cap, 8, inside=~out, max_inside=quota)
    assert (floored[:, :8] == head).all() and (floored[:, 8:] >= 0).mean() > 0.9
    assert gini(exposure(floored)) < gini(exposure(plain))  # the last two spread exposure
    assert (exposure(floored) <= cap).all()

    # serving: with the service's counts, the last places go to the member's next candidates shown least
    row = int(np.flatnonzero(~model.reranker_.required_rows(rows))[0])  # no +1 pledge: slates are list prefixes
    slate, _ = model.rank([row], k=10)
    pool_ids, _ = model.pool([row])
    scores, outside = model.score_pool([row], pool_ids)
    prefs, _, _ = model.reranker_.preferences(np.array([row]), pool_ids, scores, 20, outside=outside)
    shown = np.full(train.n_members, 100.0)
    rare = [c for c in prefs[0] if c >= 0 and c not in slate[0][:8]][-2:]  # the two least preferred left
    shown[rare] = 0.0
    got, got_scores = model.rank([row], k=10, exposure=shown)
    assert (got[0][:8] == slate[0][:8]).all() and sorted(got[0][8:].tolist()) == sorted(int(c) for c in rare)
    assert (np.diff(got_scores[0]) <= 1e-7).all()
    np.testing.assert_array_equal(model.rank([row], k=10)[0], slate)  # without counts: the re-ranker's slate
    with pytest.raises(ValueError, match="one entry per member"):
        model.rank([row], k=10, exposure=shown[:5])
