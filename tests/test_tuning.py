import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import PreferenceLists, assign_slates
from recsys._rerank import top_k
from recsys._tuning import (
    DEFAULT_TARGETS,
    Validation,
    _exposure_ratio,
    equity_path,
    shortfall,
    slate_figures,
    tune_reranker,
)
from recsys.metrics import exposure_ratio


def test_fast_exposure_ratio_equals_the_metric_frame_one():
    rng = np.random.default_rng(0)
    exposure = rng.poisson(3, 4000).astype(float)
    groups = rng.choice(
        ["a", "b", "c", "undisclosed", "tiny"], 4000, p=[0.5, 0.3, 0.18, 0.018, 0.002]
    )
    codes, uniques = pd.factorize(groups)
    assert np.isclose(
        _exposure_ratio(exposure, codes, len(uniques), 20),
        exposure_ratio(exposure, groups, min_group_size=20),
    )


def test_shortfall_is_zero_when_every_bound_is_met():
    peer = {"recall": 0.4, "bridge_rate": 0.1, "exposure_gini": 0.6}
    good = {"recall": 0.45, "bridge_rate": 0.25, "exposure_gini": 0.4, "exposure_ratio/g": 0.9}
    assert sum(shortfall(good, peer, DEFAULT_TARGETS).values()) == 0
    bad = {**good, "recall": 0.3, "exposure_ratio/g": 0.5}
    miss = shortfall(bad, peer, DEFAULT_TARGETS)
    assert miss["recall"] > 0 and miss["exposure_ratio/g"] > 0 and miss["exposure_gini"] == 0


def test_equity_path_tightens_every_lever_as_the_price_grows():
    path = [equity_path(t, k=20) for t in np.linspace(0, 1, 6)]
    assert all(a["capacity_multiple"] >= b["capacity_multiple"] for a, b in zip(path, path[1:]))
    assert all(a["floor_slots"] <= b["floor_slots"] for a, b in zip(path, path[1:]))
    assert path[0]["floor_slots"] == 0 and path[-1]["capacity_multiple"] == pytest.approx(1.0)


class _Bonus:
    """A stand-in re-ranker for the tuner: the score plus ``w`` times a fixed bonus per
    candidate (which plays the bridge bonus)."""

    def __init__(self, bonus: np.ndarray, w: float):
        self.bonus, self.w = bonus, w

    def preferences(self, rows, ids, scores, length, *, outside=None):
        got, got_scores = top_k(
            ids,
            np.where(ids >= 0, scores + self.w * self.bonus[np.maximum(ids, 0)], -np.inf),
            length,
        )
        return PreferenceLists(got, got_scores, np.zeros(got.shape, bool))

    def required_rows(self, rows):
        return np.zeros(len(rows), dtype=bool)


def _validation(n=400, n_rows=300, width=130, k=20) -> tuple[Validation, np.ndarray]:
    """Pools skewed to popular members; held-out links among the best-scored; the 'bridges' are
    pairs with a member of community 0 (a quarter of members), which the bonus favours."""
    rng = np.random.default_rng(5)
    popularity = rng.pareto(1.5, n) + 0.1
    ids = np.stack(
        [
            rng.choice(n, width, replace=False, p=popularity / popularity.sum())
            for _ in range(n_rows)
        ]
    ).astype(np.int32)
    scores = (rng.random(ids.shape) * np.log1p(popularity[ids])).astype(np.float32)
    rows = rng.choice(n, n_rows, replace=False).astype(np.int64)
    hit = (scores > np.quantile(scores, 0.75, axis=1, keepdims=True)) & (
        rng.random(ids.shape) < 0.3
    )
    relevant = sp.csr_matrix(
        (np.ones(hit.sum()), (np.nonzero(hit)[0], ids[hit])), shape=(n_rows, n)
    )
    communities = np.where(np.arange(n) % 4 == 0, 0, 1)
    communities[rows] = 1  # every ranked member sits in community 1: a bridge is a 0-candidate
    peer, _ = top_k(ids, np.where(ids >= 0, popularity[np.maximum(ids, 0)], -np.inf), k)
    validation = Validation(
        member_rows=rows,
        pool_ids=ids,
        scores=scores,
        outside=np.zeros(ids.shape, dtype=bool),
        relevant=relevant,
        communities=communities,
        sensitive=pd.DataFrame({"g": rng.choice(["a", "b"], n)}),
        tiers=np.where(popularity > np.median(popularity), 2, 0),
        peer_ids=peer,
        capacity=lambda multiple: np.full(n, int(np.ceil(multiple * k * n_rows / n))),
        k=k,
    )
    return validation, (communities == 0).astype(float)


def test_the_tuner_meets_a_feasible_bound_at_the_smallest_price():
    validation, bonus = _validation()
    plain, _ = top_k(validation.pool_ids, validation.scores, 20)
    peer = slate_figures(validation, validation.peer_ids)["bridge_rate"]
    # twice the bridges of ranking by score alone: a bonus is needed, and enough of one exists
    ratio = 2 * slate_figures(validation, plain)["bridge_rate"] / peer
    targets = {
        "min_recall_ratio": 0.0,
        "min_bridge_ratio": ratio,
        "max_gini_ratio": 10.0,
        "min_exposure_ratio": 0.0,
    }
    params, report = tune_reranker(
        lambda s: _Bonus(bonus, s["bridge_weight"]), validation, targets=targets
    )
    assert report["bounds_met"]["bridge_rate"] and not report["infeasible"]
    assert report["equity_price"] == 0.0  # nothing to pay for: the equity bounds are loose
    assert params["bridge_weight"] > 0
    # the smallest weight that meets the bound: a clearly smaller one does not
    lower = dict(params, bridge_weight=params["bridge_weight"] * 0.8)
    ids, _ = _assign(validation, _Bonus(bonus, lower["bridge_weight"]), lower)
    below = slate_figures(validation, ids)["bridge_rate"]
    assert below < ratio * peer <= report["chosen"]["bridge_rate"]


def test_the_tuner_reports_a_bound_no_price_can_meet():
    validation, bonus = _validation()
    # slates entirely of bridges: the pools hold about a quarter of them, so no price can
    targets = {
        "min_recall_ratio": 0.0,
        "min_bridge_ratio": 1e6,
        "max_gini_ratio": 10.0,
        "min_exposure_ratio": 0.0,
    }
    params, report = tune_reranker(
        lambda s: _Bonus(bonus, s["bridge_weight"]), validation, targets=targets
    )
    assert report["infeasible"] == ["bridge_rate"] and not report["all_bounds_met"]
    assert params["bridge_weight"] == pytest.approx(4.0)  # the largest price, kept


def test_the_equity_price_buys_the_gini_bound():
    validation, bonus = _validation()
    targets = {
        "min_recall_ratio": 0.0,
        "min_bridge_ratio": 0.0,
        "max_gini_ratio": 0.6,
        "min_exposure_ratio": 0.0,
    }
    params, report = tune_reranker(
        lambda s: _Bonus(bonus, s["bridge_weight"]), validation, targets=targets
    )
    assert report["bounds_met"]["exposure_gini"] and report["equity_price"] > 0
    assert report["chosen"]["exposure_gini"] <= 0.6 * report["peer"]["exposure_gini"]
    assert report["chosen"]["exposure_gini"] < report["unconstrained"]["exposure_gini"]


def test_a_bound_that_costs_more_recall_than_the_floor_allows_is_held_by_recall():
    validation, bonus = _validation()
    plain, _ = top_k(validation.pool_ids, validation.scores, 20)
    plain_recall = slate_figures(validation, plain)["recall"]
    peer = slate_figures(validation, validation.peer_ids)["recall"]
    # keep 97% of ranking by score alone, and ask for far more bridges than that leaves room for
    floor = 0.97 * plain_recall / peer
    targets = {
        "min_recall_ratio": floor,
        "min_bridge_ratio": 1e6,
        "max_gini_ratio": 10.0,
        "min_exposure_ratio": 0.0,
    }
    params, report = tune_reranker(
        lambda s: _Bonus(bonus, s["bridge_weight"]), validation, targets=targets
    )
    assert report["held_by_recall"] == ["bridge_rate"] and report["bounds_met"]["recall"]
    assert 0 < params["bridge_weight"] < 4.0  # as much bonus as the recall floor allows
    assert report["chosen"]["bridge_rate"] > report["unconstrained"]["bridge_rate"]


def test_the_tuner_measures_each_setting_as_the_assignment_makes_it():
    validation, bonus = _validation()
    params, report = tune_reranker(lambda s: _Bonus(bonus, s["bridge_weight"]), validation)
    ids, _ = _assign(validation, _Bonus(bonus, params["bridge_weight"]), params)
    assert report["chosen"] == slate_figures(validation, ids)


def test_fixed_settings_are_never_searched():
    validation, bonus = _validation()
    params, report = tune_reranker(
        lambda s: _Bonus(bonus, s["bridge_weight"]),
        validation,
        fixed={"floor_slots": 0, "capacity_multiple": 3.0},
    )
    assert params["floor_slots"] == 0 and params["capacity_multiple"] == 3.0


def _assign(validation, reranker, setting):
    prefs = reranker.preferences(None, validation.pool_ids, validation.scores, 120)
    return assign_slates(
        prefs,
        k=20,
        capacity=validation.capacity(setting["capacity_multiple"]),
        required=np.zeros(len(prefs.ids), bool),
        floor_slots=setting["floor_slots"],
        floor_depth=setting["floor_depth"] * 20,
    )


def test_fitted_model_reports_its_tuning(fitted):
    model, _, _ = fitted
    report = model.rerank_report_
    assert report["tuned"] and report["settings_tried"] > 2
    assert report["params"] == {name: model.rerank_params_[name] for name in report["params"]}
    assert (
        model.rerank_params_["bonus"] == "linear" and 0 < model.rerank_params_["score_scale"] < 1
    )
    assert set(report["bounds_met"]) >= {
        "recall",
        "bridge_rate",
        "exposure_gini",
        "exposure_ratio/network_size",
        "exposure_ratio/gender",
    }
    assert set(report["ratios_to_peer"]) == {
        "recall",
        "recall_pooled",
        "bridge_rate",
        "exposure_gini",
    }
    assert "exposure_ratio/gender" in report["chosen"] and "recall" in report["peer"]


def test_batch_ranking_holds_capacity(fitted):
    model, train, _ = fitted
    rows = np.arange(train.n_members)
    ids, scores = model.rank_batch(rows, k=10)
    cap = model.slate_capacity(train, n_slates=len(rows), k=10)
    counts = np.bincount(ids[ids >= 0], minlength=train.n_members)
    assert (counts <= cap).all()
    for row_ids, row_scores in zip(ids, scores):
        assert (np.diff(row_scores[row_ids >= 0]) <= 1e-7).all()  # scores agree with the order


def test_least_exposed_places_in_batch_and_in_serving(fitted):
    fitted_model, train, _ = fitted
    rows = np.arange(train.n_members)
    plain, _ = fitted_model.with_setting(floor_slots=0, floor_depth=2).rank_batch(rows, k=10)
    model = fitted_model.with_setting(floor_slots=4, floor_depth=2)  # two places in a slate of 10
    floored, _ = model.rank_batch(rows, k=10)
    exposure = lambda ids: np.bincount(ids[ids >= 0], minlength=train.n_members)  # noqa: E731
    # the first eight places are the capacity assignment's for slates of eight
    from recsys import assignment_head
    from recsys.metrics import gini

    prefs = model.preference_lists(rows, k=10)
    cap = model.slate_capacity(train, n_slates=len(rows), k=10)
    head, _ = assignment_head(
        prefs, k=10, capacity=cap, required=model.reranker_.required_rows(rows), floor_slots=2
    )
    assert (floored[:, :8] == head).all() and (floored[:, 8:] >= 0).mean() > 0.9
    assert gini(exposure(floored)) < gini(exposure(plain))  # the last two spread exposure
    assert (exposure(floored) <= cap).all()

    # serving: with the service's counts, the last places go to the member's next candidates shown
    # least
    row = int(
        np.flatnonzero(~model.reranker_.required_rows(rows))[0]
    )  # no +1 pledge: slates are list prefixes
    slate, _ = model.rank([row], k=10)
    pool_ids, _ = model.pool([row])
    scores, outside = model.score_pool([row], pool_ids)
    prefs, _, _ = model.reranker_.preferences(
        np.array([row]), pool_ids, scores, 20, outside=outside
    )
    shown = np.full(train.n_members, 100.0)
    rare = [c for c in prefs[0] if c >= 0 and c not in slate[0][:8]][
        -2:
    ]  # the two least preferred left
    shown[rare] = 0.0
    got, got_scores = model.rank([row], k=10, exposure=shown)
    assert (got[0][:8] == slate[0][:8]).all() and sorted(got[0][8:].tolist()) == sorted(
        int(c) for c in rare
    )
    assert (np.diff(got_scores[0]) <= 1e-7).all()
    # candidates beyond the first 2k preferences are reached only when the places look deeper
    deep, _, _ = model.reranker_.preferences(
        np.array([row]), pool_ids, scores, 60, outside=outside
    )
    beyond = [int(c) for c in deep[0][20:] if c >= 0][:2]
    assert len(beyond) == 2
    shown[:], shown[beyond] = 100.0, 0.0
    assert not set(model.rank([row], k=10, exposure=shown)[0][0]) & set(beyond)
    deeper = model.with_setting(floor_depth=6)
    assert sorted(deeper.rank([row], k=10, exposure=shown)[0][0][8:].tolist()) == sorted(beyond)
    assert model.rerank_params_["floor_depth"] == 2  # the copy's setting is its own
    np.testing.assert_array_equal(
        model.rank([row], k=10)[0], slate
    )  # without counts: the re-ranker's slate
    with pytest.raises(ValueError, match="one entry per member"):
        model.rank([row], k=10, exposure=shown[:5])
