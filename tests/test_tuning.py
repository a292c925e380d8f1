import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import PreferenceLists, assign_slates
from recsys._rerank import top_k
from recsys._tuning import _exposure_ratio, _group_codes, _shortfall, slate_figures, tune_reranker
from recsys.metrics import exposure_ratio


def test_fast_exposure_ratio_equals_the_metric_frame_one():
    rng = np.random.default_rng(0)
    exposure = rng.poisson(3, 4000).astype(float)
    groups = rng.choice(
        ["a", "b", "c", "undisclosed", "tiny"], 4000, p=[0.5, 0.3, 0.18, 0.018, 0.002]
    )
    codes, n = _group_codes(pd.DataFrame({"g": groups}), "g", np.arange(4000))
    assert np.isclose(
        _exposure_ratio(exposure, codes, n, 20),
        exposure_ratio(exposure, groups, min_group_size=20),
    )


def test_shortfall_is_zero_when_every_bound_is_met():
    base = {"recall": 0.4, "bridge_rate": 0.1, "exposure_gini": 0.6}
    good = {"recall": 0.39, "bridge_rate": 0.25, "exposure_gini": 0.4, "exposure_ratio/g": 0.9}
    targets = {
        "min_recall_ratio": 0.95,
        "min_bridge_gain": 2.0,
        "max_gini_ratio": 0.7,
        "min_exposure_ratio": 0.85,
    }
    assert sum(_shortfall(good, base, targets).values()) == 0
    bad = {**good, "recall": 0.3, "exposure_ratio/g": 0.5}
    miss = _shortfall(bad, base, targets)
    assert miss["recall"] > 0 and miss["exposure_ratio/g"] > 0 and miss["exposure_gini"] == 0


class _Bonus:
    """A stand-in re-ranker for the tuner: the score plus ``w`` times a fixed bonus per
    candidate.
    """

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


def _tuning_problem(n=400, n_rows=300, width=130, k=20):
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
    # held-out connections: the best-scored quarter of each pool, thinned
    hit = (scores > np.quantile(scores, 0.75, axis=1, keepdims=True)) & (
        rng.random(ids.shape) < 0.3
    )
    relevant = sp.csr_matrix(
        (np.ones(hit.sum()), (np.nonzero(hit)[0], ids[hit])), shape=(n_rows, n)
    )
    problem = dict(
        member_rows=rows,
        pool_ids=ids,
        scores=scores,
        outside=np.zeros(ids.shape, dtype=bool),
        relevant=relevant,
        communities=rng.integers(0, 4, n),
        sensitive=pd.DataFrame({"g": rng.choice(["a", "b"], n)}),
        capacity=lambda multiple: np.full(n, int(np.ceil(multiple * k * n_rows / n))),
        k=k,
    )
    return problem, -np.log1p(popularity)


def test_tuner_measures_each_setting_as_the_assignment_makes_it():
    problem, bonus = _tuning_problem()
    make = lambda params: _Bonus(bonus, params["w"])  # noqa: E731
    grid = {
        "w": (0.0, 0.2),
        "capacity_multiple": (2.0, 20.0),
        "floor_slots": (0, 2, 4),
        "floor_depth": (2, 6),
    }
    params, report = tune_reranker(make, grid=grid, **problem)
    # without least-exposed places the depth is moot: 2 weights × 2 capacities × (1 + 2 × 2)
    assert report["settings_tried"] == 20 and set(params) == set(grid)

    population = np.unique(problem["pool_ids"])
    measure = {name: problem[name] for name in ("relevant", "communities", "sensitive")}
    for setting in (
        {"w": 0.2, "capacity_multiple": 2.0, "floor_slots": 4, "floor_depth": 6},
        {"w": 0.0, "capacity_multiple": 20.0, "floor_slots": 2, "floor_depth": 2},
        {"w": 0.2, "capacity_multiple": 20.0, "floor_slots": 0, "floor_depth": 2},
        params,
    ):
        one = {name: (value,) for name, value in setting.items()}
        _, got = tune_reranker(make, grid=one, **problem)
        prefs = make(setting).preferences(None, problem["pool_ids"], problem["scores"], 120)
        ids, _ = assign_slates(
            prefs,
            k=20,
            capacity=problem["capacity"](setting["capacity_multiple"]),
            required=np.zeros(len(prefs.ids), bool),
            floor_slots=setting["floor_slots"],
            floor_depth=setting["floor_depth"] * 20,
        )
        assert got["chosen"] == slate_figures(
            problem["member_rows"], ids, population=population, **measure
        )


def test_deeper_least_exposed_places_reach_members_shown_less():
    problem, bonus = _tuning_problem()
    make = lambda params: _Bonus(bonus, params["w"])  # noqa: E731
    figures = {
        depth: tune_reranker(
            make,
            grid={
                "w": (0.0,),
                "capacity_multiple": (20.0,),
                "floor_slots": (6,),
                "floor_depth": (depth,),
            },
            **problem,
        )[1]["chosen"]
        for depth in (2, 6)
    }
    assert figures[6]["exposure_gini"] < figures[2]["exposure_gini"]


def test_fitted_model_reports_its_tuning(fitted):
    model, _, _ = fitted
    report = model.rerank_report_
    from recsys._tuning import DEFAULT_GRID

    weights = np.prod(
        [
            len(DEFAULT_GRID[name])
            for name in ("bridge_weight", "degree_penalty", "bound_tolerance")
        ]
    )
    floors = (
        len(DEFAULT_GRID["floor_slots"]) - 1
    )  # 0 (none) is tried once, the others at every depth
    assignments = len(DEFAULT_GRID["capacity_multiple"]) * (
        1 + floors * len(DEFAULT_GRID["floor_depth"])
    )
    assert report["tuned"] and report["settings_tried"] == weights * assignments
    assert set(report["params"]) == set(DEFAULT_GRID)
    assert report["params"] == {name: model.rerank_params_[name] for name in report["params"]}
    assert (
        model.rerank_params_["bonus"] == "linear" and 0 < model.rerank_params_["score_scale"] < 1
    )
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
