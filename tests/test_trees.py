"""The gradient-boosted acceptance model: its trees copied out of scikit-learn predict what
scikit-learn predicts (NaN and ±inf included), the compiled pool scorer equals the features
then the model, and a saved model is plain JSON that loads without unpickling anything."""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

from recsys import (
    FEATURE_NAMES,
    GradientBoostedAcceptanceModel,
    IntroductionRecommender,
    ModelFormatError,
    _kernels,
    acceptance_from_dict,
    holdout_split,
    load_model,
    reciprocal,
    save_model,
    synthetic_network,
)
from recsys._features import swap_direction
from recsys._trees import DERIVED_NAMES, TreeEnsemble, model_inputs

F = len(FEATURE_NAMES)


def _pairs(n=4000, seed=0):
    """Feature-like rows: logs of counts ≥ 0 (so the derived ratios are defined), with an
    interaction and a degree asymmetry in the labels."""
    rng = np.random.default_rng(seed)
    X = rng.gamma(1.0, 1.0, size=(n, F)).astype(np.float32)
    X[:, FEATURE_NAMES.index("same_community")] = rng.random(n) < 0.5
    logit = X[:, 0] * X[:, 2] - 0.7 * X[:, -2] + 0.3 * X[:, -1] - 1
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    return X, y


def _messy(n, n_cols, seed):
    """Random rows with NaN, +inf and -inf sprinkled in."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, n_cols)) * 2
    for value, share in ((np.nan, 0.1), (np.inf, 0.05), (-np.inf, 0.05)):
        Z[rng.random(Z.shape) < share] = value
    return Z


@pytest.fixture(scope="module")
def data():
    return _pairs()


# ------------------------------------------------------------------ the trees against scikit-learn
def test_copied_trees_predict_what_scikit_learn_predicts_with_nan_and_inf():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 6))
    X[rng.random(X.shape) < 0.08] = np.nan  # missing values in training: NaN-only splits too
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + np.isnan(X[:, 2]) > 1).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0).fit(X, y)
    trees = TreeEnsemble.from_hist_gradient_boosting(clf)
    assert np.isinf(trees.threshold).any() and trees.missing_left.any()  # both rules exercised
    Z = _messy(5000, 6, seed=2)
    # the same float64 sums in the same order: equal to the last bit
    np.testing.assert_array_equal(trees.raw_predict(Z), clf.decision_function(Z))
    assert trees.n_trees == clf.n_iter_
    assert trees.max_depth == max(p[0].get_max_depth() for p in clf._predictors)


@pytest.mark.parametrize("derived", [True, False])
def test_model_equals_scikit_learn_fitted_on_the_same_inputs(data, derived):
    X, y = data
    model = GradientBoostedAcceptanceModel(max_iter=60, derived_features=derived).fit(X, y)
    params = dict(
        max_iter=60,
        learning_rate=0.1,
        max_leaf_nodes=31,
        max_depth=6,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=0,
    )
    inputs = model._inputs(X, swap=False)
    reference = HistGradientBoostingClassifier(**params).fit(inputs, y)
    assert inputs.shape[1] == F + (len(DERIVED_NAMES) if derived else 0)
    # random rows, in and beyond the training range, NaN and ±inf included
    Z = np.abs(_messy(3000, F, seed=3)).astype(np.float32)
    Z[::7, -1] = np.nan
    z_in = model._inputs(Z, swap=False)
    np.testing.assert_array_equal(model.decision_function(Z), reference.decision_function(z_in))
    np.testing.assert_allclose(
        model.predict_proba(Z), reference.predict_proba(z_in)[:, 1], rtol=0, atol=6e-8
    )
    assert model.predict_proba(Z).dtype == np.float32


def test_derived_inputs_match_their_formulas():
    X, _ = _pairs(500, seed=4)
    X[:5, FEATURE_NAMES.index("log_common_contacts")] = 0  # no common contact: ratios are 0
    x = GradientBoostedAcceptanceModel()._inputs(X, swap=False).astype(np.float64)
    c = np.expm1(X[:, 2].astype(np.float64))
    du, dv = np.expm1(X[:, -2].astype(np.float64)), np.expm1(X[:, -1].astype(np.float64))
    aa = np.expm1(X[:, 0].astype(np.float64))
    want = np.column_stack(
        [
            c / np.sqrt(du * dv),
            c / np.minimum(du, dv),
            c / np.maximum(du, dv),
            X[:, -2].astype(np.float64) + X[:, -1],
            np.divide(aa, c, out=np.zeros_like(c), where=c > 0),
        ]
    ).astype(np.float32)
    np.testing.assert_array_equal(x[:, :F], X)
    np.testing.assert_allclose(x[:, F:], want, rtol=1e-6)
    assert (x[:5, F + 4] == 0).all() and (x[:5, F] == 0).all()
    # the other direction swaps the own sizes and reads the same symmetric ratios
    row, out = X[0].astype(np.float64), np.empty(F + len(DERIVED_NAMES))
    model_inputs(row, True, True, out)
    assert out[F - 2] == X[0, -1] and out[F - 1] == X[0, -2]
    np.testing.assert_array_equal(out[F:], x[0, F:])


def test_both_directions_are_scored_and_combined(data):
    X, y = data
    model = GradientBoostedAcceptanceModel(max_iter=40).fit(X, y)
    p_uv, p_vu = model.predict_proba(X), model.predict_proba(swap_direction(X))
    for how in ("harmonic", "product", "none"):
        np.testing.assert_array_equal(
            model.reciprocal_score(X, how=how), reciprocal(p_uv, p_vu, how=how)
        )
    np.testing.assert_array_equal(
        model.reciprocal_score(swap_direction(X)), model.reciprocal_score(X)
    )
    assert not np.array_equal(p_uv, p_vu)  # the degree columns matter to the trees


def test_stored_as_strict_json_and_restored_exactly(data):
    X, y = data
    model = GradientBoostedAcceptanceModel(max_iter=30).fit(X, y)
    text = json.dumps(model.to_dict(), allow_nan=False)  # strict JSON: no NaN or Infinity
    restored = acceptance_from_dict(json.loads(text))
    assert isinstance(restored, GradientBoostedAcceptanceModel)
    assert restored.get_params() == model.get_params()
    np.testing.assert_array_equal(restored.reciprocal_score(X), model.reciprocal_score(X))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda t: t["right"].__setitem__(0, 0), "children"),
        (lambda t: t["feature"].__setitem__(0, 99), "split features"),
        (lambda t: t["threshold"].__setitem__(0, float("nan")), "thresholds"),
        (lambda t: t["roots"].__setitem__(1, 0), "roots"),
        (lambda t: t["value"].pop(), "one entry per node"),
    ],
)
def test_stored_trees_a_walk_could_escape_are_refused(data, corrupt, message):
    X, y = data
    stored = GradientBoostedAcceptanceModel(max_iter=5).fit(X, y).to_dict()
    corrupt(stored["trees"])
    with pytest.raises(ValueError, match=message):
        acceptance_from_dict(stored)


def test_stored_model_for_other_features_is_refused(data):
    X, y = data
    stored = GradientBoostedAcceptanceModel(max_iter=5).fit(X, y).to_dict()
    stored["features"] = stored["features"][:-1]
    with pytest.raises(ValueError, match="other features"):
        acceptance_from_dict(stored)


# ------------------------------------------------------------------ the estimator contract
def test_estimator_contract(data):
    X, y = data
    name = GradientBoostedAcceptanceModel.__name__
    check_parameters_default_constructible(name, GradientBoostedAcceptanceModel())
    check_no_attributes_set_in_init(name, GradientBoostedAcceptanceModel())
    model = GradientBoostedAcceptanceModel(max_iter=10, random_state=3)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    assert model.fit(X, y) is model
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(clone(model), "trees_")
    before = model.to_dict()
    model.reciprocal_score(X)
    assert model.to_dict() == before


def test_bad_training_data_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="both accepted"):
        GradientBoostedAcceptanceModel().fit(X, np.zeros(len(X)))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        GradientBoostedAcceptanceModel().fit(bad, y)
    with pytest.raises(ValueError, match="shape"):
        GradientBoostedAcceptanceModel().fit(X[:, :-1], y)


# ------------------------------------------------------------------ in the recommender
@pytest.fixture(scope="module")
def boosted():
    net = synthetic_network(800, seed=7)
    train, _ = holdout_split(net, fraction=0.1, seed=1)
    model = IntroductionRecommender(
        pool_size=60, als_iterations=2, acceptance="gradient_boosting", tune_rerank=False
    ).fit(train)
    return model, train


@pytest.mark.parametrize("how", ["harmonic", "product", "none"])
@pytest.mark.parametrize("parallel", [False, True])
def test_pools_scored_in_one_pass_equal_features_then_trees(boosted, monkeypatch, how, parallel):
    model, train = boosted
    assert isinstance(model.acceptance_, GradientBoostedAcceptanceModel)
    rows = np.arange(0, train.n_members, 5)
    pool_ids, _ = model.pool(rows)
    pool_ids[2, 10:] = -1  # padding mid-row stays padding
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 0 if parallel else 10**9)
    scores, outside = model.features_.score_pools(rows, pool_ids, model.acceptance_, how=how)
    r, j = np.nonzero(pool_ids >= 0)
    feats = model.features_.transform(rows[r], pool_ids[r, j])
    # the same features to the bit, the same traversal: the same scores to the bit
    np.testing.assert_array_equal(scores[r, j], model.acceptance_.reciprocal_score(feats, how=how))
    np.testing.assert_array_equal(
        outside[r, j], feats[:, FEATURE_NAMES.index("log_common_contacts")] == 0
    )
    assert np.isneginf(scores[pool_ids < 0]).all() and not outside[pool_ids < 0].any()


def test_saved_model_loads_without_pickles_and_ranks_the_same(boosted, tmp_path, monkeypatch):
    model, _ = boosted
    path = save_model(model, tmp_path / "model")
    stored = json.loads((path / "acceptance.json").read_text())
    assert stored["kind"] == "gradient_boosting"

    def refusing(real):
        # load_model ends with a trial ranking, and numba's own cache of compiled kernels is
        # pickled: only numba may unpickle, never the code that reads the model's files
        def refuse(*args, **kwargs):
            if sys._getframe(1).f_globals.get("__name__", "").startswith("numba."):
                return real(*args, **kwargs)
            raise AssertionError("a saved model must not be unpickled")

        return refuse

    with monkeypatch.context() as patched:
        patched.setattr(pickle, "load", refusing(pickle.load))
        patched.setattr(pickle, "loads", refusing(pickle.loads))
        loaded = load_model(path)
    rows = np.arange(30)
    got, want = loaded.rank(rows, k=10, rerank=False), model.rank(rows, k=10, rerank=False)
    assert isinstance(loaded.acceptance_, GradientBoostedAcceptanceModel)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_corrupt_trees_in_a_saved_model_are_a_format_error(boosted, tmp_path):
    import hashlib

    model, _ = boosted
    path = save_model(model, tmp_path / "model")
    stored = json.loads((path / "acceptance.json").read_text())
    stored["trees"]["right"][0] = 0
    (path / "acceptance.json").write_text(json.dumps(stored))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["acceptance.json"] = hashlib.sha256(
        (path / "acceptance.json").read_bytes()
    ).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="children"):
        load_model(path)


def test_recommender_refuses_trees_under_a_fairness_constraint():
    net = synthetic_network(200, seed=1)
    with pytest.raises(ValueError, match="logistic"):
        IntroductionRecommender(acceptance="gradient_boosting", fairness="tpr_parity").fit(net)
    with pytest.raises(ValueError, match="acceptance must be"):
        IntroductionRecommender(acceptance="forest").fit(net)
