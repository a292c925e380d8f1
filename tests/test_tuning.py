import numpy as np
import pandas as pd

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
    assert set(report["params"]) == {"bridge_weight", "degree_penalty", "bound_tolerance", "capacity_multiple"}
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
