import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from recsys import FEATURE_NAMES, AcceptanceModel, reciprocal
from recsys._features import swap_direction


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, len(FEATURE_NAMES)))
    y = (X[:, 0] * X[:, 1] + X[:, 2] + rng.normal(size=3000) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("interactions", [True, False])
def test_written_out_model_equals_the_scikit_learn_pipeline(data, interactions):
    X, y = data
    ours = AcceptanceModel(interactions=interactions).fit(X, y)
    steps = [StandardScaler()] + (
        [PolynomialFeatures(2, include_bias=False), StandardScaler()] if interactions else []
    )
    reference = make_pipeline(*steps, LogisticRegression(C=0.1, max_iter=2000)).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X)[:, 1], atol=1e-6)
    restored = AcceptanceModel.from_dict(ours.to_dict())
    np.testing.assert_array_equal(restored.predict_proba(X), ours.predict_proba(X))


def test_interactions_are_learned(data):
    X, y = data
    plain = AcceptanceModel(interactions=False).fit(X, y)
    inter = AcceptanceModel(interactions=True).fit(X, y)
    assert (inter.predict_proba(X).round() == y).mean() > (
        plain.predict_proba(X).round() == y
    ).mean() + 0.05


def test_stored_model_for_other_features_is_refused(data):
    X, y = data
    stored = AcceptanceModel().fit(X, y).to_dict()
    stored["features"] = stored["features"][:-1]
    with pytest.raises(ValueError, match="other features"):
        AcceptanceModel.from_dict(stored)


def test_one_class_is_an_error(data):
    X, _ = data
    with pytest.raises(ValueError, match="both accepted and not-accepted"):
        AcceptanceModel().fit(X, np.zeros(len(X)))


def test_reciprocal_combinations():
    p, q = np.array([0.8, 0.5, 0.0]), np.array([0.2, 0.5, 0.9])
    np.testing.assert_allclose(reciprocal(p, q), [0.32, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(reciprocal(p, q), reciprocal(q, p))
    np.testing.assert_allclose(reciprocal(p, q, how="product"), p * q, atol=1e-7)
    np.testing.assert_allclose(reciprocal(p, q, how="none"), p)
    with pytest.raises(ValueError):
        reciprocal(p, q, how="max")


def test_swap_direction_only_swaps_own_network_sizes():
    f = np.arange(len(FEATURE_NAMES), dtype=np.float32)[None, :]
    s = swap_direction(f)
    assert s[0, -1] == f[0, -2] and s[0, -2] == f[0, -1]
    np.testing.assert_array_equal(s[0, :-2], f[0, :-2])


def test_constrained_model_narrows_the_true_positive_rate_gap():
    from recsys import ConstrainedAcceptanceModel, acceptance_from_dict

    rng = np.random.default_rng(1)
    n = 4000
    X = rng.normal(size=(n, len(FEATURE_NAMES)))
    group = np.where(rng.random(n) < 0.3, "cross", "same")
    # cross pairs connect on a weaker signal: an unconstrained model under-rates them
    y = ((X[:, 0] + np.where(group == "cross", -1.0, 0.5) + rng.normal(size=n)) > 0).astype(int)

    def tpr_gap(model):
        hit = model.predict_proba(X) >= 0.5
        rates = [hit[(group == g) & (y == 1)].mean() for g in ("same", "cross")]
        return abs(rates[0] - rates[1])

    plain = AcceptanceModel().fit(X, y)
    fair = ConstrainedAcceptanceModel(constraint="tpr_parity", max_iter=20).fit(
        X, y, sensitive_features=group
    )
    assert tpr_gap(fair) < tpr_gap(plain)
    restored = acceptance_from_dict(fair.to_dict())
    np.testing.assert_allclose(restored.predict_proba(X), fair.predict_proba(X), rtol=1e-6)
    s = fair.reciprocal_score(X)
    assert s.shape == (n,) and np.isfinite(s).all()
