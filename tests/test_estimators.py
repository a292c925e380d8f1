"""The estimator contract, run over every estimator of the library (implicit's test-mixin style).

Each case says how to build the estimator, fit it and call it; the same checks then hold for all:
scikit-learn's own checks of parameters (default-constructible, nothing set in ``__init__``,
``get_params``/``set_params`` invariance), ``clone`` gives an unfitted copy with equal
parameters, a call before ``fit`` raises ``NotFittedError``, ``fit`` returns the estimator,
learned state ends in ``_``, outputs have the documented dtypes and padding, and a call leaves
the fitted state as it was. (``check_estimator`` as a whole does not apply: these estimators fit
on networks and pair features, not on arbitrary ``X, y``.)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from recsys import (
    FEATURE_NAMES,
    AcceptanceModel,
    AdamicAdarCandidates,
    ALSCandidates,
    BridgeBonusReranker,
    BrokerRanker,
    ConstrainedAcceptanceModel,
    GradientBoostedAcceptanceModel,
    InterestOverlapCandidates,
    IntroductionRecommender,
    PersonalizedPageRankCandidates,
    SlateReranker,
    synthetic_network,
)


@dataclass
class Case:
    """How one estimator is built, fitted and called. ``call`` returns the outputs to check:
    ``("slates", ids, scores)`` or ``("probabilities", p)``."""

    make: Callable[[], Any]
    fit: Callable[[Any], Any]
    call: Callable[[Any], tuple]


@pytest.fixture(scope="module")
def net():
    return synthetic_network(300, seed=5)


@pytest.fixture(scope="module")
def model(net):
    return IntroductionRecommender(pool_size=40, als_iterations=2, random_state=1).fit(net)


def _pairs(n_rows=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, len(FEATURE_NAMES))).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=n_rows) > 0).astype(int)
    return x, y


def _structure(net):
    communities = np.arange(net.n_members) % 3
    return dict(
        communities=communities,
        degrees=net.degrees,
        member_spans_one_community=np.zeros(net.n_members, bool),
        pledged=np.arange(net.n_members) % 4 == 0,
    )


def _pool(net, width=12):
    rng = np.random.default_rng(3)
    rows = np.arange(6)
    ids = np.stack([rng.choice(net.n_members, width, replace=False) for _ in rows])
    ids = ids.astype(np.int32)
    ids[:, -2:] = -1
    scores = np.where(ids >= 0, rng.random(ids.shape), -np.inf).astype(np.float32)
    outside = rng.random(ids.shape) < 0.5
    return rows, ids, scores, outside


def _cases(net, model) -> dict[str, Case]:
    x, y = _pairs()
    pair_type = np.where(np.arange(len(y)) % 3 == 0, "cross", "same")
    rows, ids, scores, outside = _pool(net)
    brokers = np.flatnonzero(np.diff(model.network_.adjacency.indptr) >= 3)[:5]
    return {
        "IntroductionRecommender": Case(
            lambda: IntroductionRecommender(pool_size=30, als_iterations=2, tune_rerank=False),
            lambda est: est.fit(net),
            lambda est: ("slates", *est.rank(np.arange(8), k=6)),
        ),
        "AcceptanceModel": Case(
            lambda: AcceptanceModel(),
            lambda est: est.fit(x, y),
            lambda est: ("probabilities", est.predict_proba(x)),
        ),
        "ConstrainedAcceptanceModel": Case(
            lambda: ConstrainedAcceptanceModel(max_iter=5),
            lambda est: est.fit(x, y, sensitive_features=pair_type),
            lambda est: ("probabilities", est.reciprocal_score(x)),
        ),
        "GradientBoostedAcceptanceModel": Case(
            lambda: GradientBoostedAcceptanceModel(max_iter=10, min_samples_leaf=5),
            lambda est: est.fit(x, y),
            lambda est: ("probabilities", est.reciprocal_score(x)),
        ),
        "BridgeBonusReranker": Case(
            lambda: BridgeBonusReranker(),
            lambda est: est.fit(**_structure(net)),
            lambda est: ("slates", *est.rerank(rows, ids, scores, 5, outside=outside)),
        ),
        "SlateReranker": Case(
            lambda: SlateReranker(),
            lambda est: est.fit(
                **_structure(net),
                group_codes=np.arange(net.n_members) % 2,
                group_shares=np.array([0.5, 0.5]),
            ),
            lambda est: ("slates", *est.rerank(rows, ids, scores, 5, outside=outside)),
        ),
        "AdamicAdarCandidates": Case(
            lambda: AdamicAdarCandidates(three_hop_weight=0.03),
            lambda est: est.fit(net),
            lambda est: ("slates", *est.candidates(np.arange(8), 10)),
        ),
        "InterestOverlapCandidates": Case(
            lambda: InterestOverlapCandidates(max_df=0.3),
            lambda est: est.fit(net),
            lambda est: ("slates", *est.candidates(np.arange(8), 10)),
        ),
        "ALSCandidates": Case(
            lambda: ALSCandidates(factors=8, iterations=2, random_state=0),
            lambda est: est.fit(net),
            lambda est: ("slates", *est.candidates(np.arange(8), 10)),
        ),
        "PersonalizedPageRankCandidates": Case(
            lambda: PersonalizedPageRankCandidates(epsilon=1e-3),
            lambda est: est.fit(net),
            lambda est: ("slates", *est.candidates(np.arange(8), 10)),
        ),
        "BrokerRanker": Case(
            lambda: BrokerRanker(),
            lambda est: est.fit(model),
            lambda est: (
                "slates",
                est.rank(brokers, k=4)[0][:, :, 0],
                est.rank(brokers, k=4)[1],
            ),
        ),
    }


NAMES = [
    "IntroductionRecommender",
    "AcceptanceModel",
    "ConstrainedAcceptanceModel",
    "GradientBoostedAcceptanceModel",
    "BridgeBonusReranker",
    "SlateReranker",
    "AdamicAdarCandidates",
    "InterestOverlapCandidates",
    "ALSCandidates",
    "PersonalizedPageRankCandidates",
    "BrokerRanker",
]


@pytest.fixture(params=NAMES)
def case(request, net, model):
    return request.param, _cases(net, model)[request.param]


def test_every_estimator_of_the_public_api_is_covered():
    import inspect

    from sklearn.base import BaseEstimator

    import recsys

    public = {
        name
        for name in recsys.__all__
        if inspect.isclass(getattr(recsys, name))
        and issubclass(getattr(recsys, name), BaseEstimator)
    }
    assert public == set(NAMES)


def test_scikit_learn_parameter_checks(case):
    name, c = case
    estimator = c.make()
    check_parameters_default_constructible(name, estimator)
    check_no_attributes_set_in_init(name, estimator)
    check_get_params_invariance(name, estimator)
    check_set_params(name, estimator)


def test_params_round_trip_and_unknown_params_are_refused(case):
    _, c = case
    estimator = c.make()
    params = estimator.get_params()
    assert estimator.set_params(**params).get_params() == params
    with pytest.raises(ValueError, match="Invalid parameter"):
        estimator.set_params(no_such_parameter=1)


def test_unfitted_estimators_say_so(case):
    _, c = case
    with pytest.raises(NotFittedError):
        c.call(c.make())


def test_fit_returns_the_estimator_and_clone_is_unfitted(case):
    _, c = case
    estimator = c.make()
    assert c.fit(estimator) is estimator
    learned = [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]
    assert learned, "fitted state lives in attributes ending in _"
    fresh = clone(estimator)
    assert fresh.get_params() == estimator.get_params()
    with pytest.raises(NotFittedError):
        c.call(fresh)
    assert repr(estimator).startswith(type(estimator).__name__)


def test_outputs_have_the_documented_dtypes_and_padding(case):
    _, c = case
    estimator = c.make()
    c.fit(estimator)
    kind, *out = c.call(estimator)
    if kind == "probabilities":
        (p,) = out
        assert p.dtype == np.float32 and p.ndim == 1
        assert ((p >= 0) & (p <= 1)).all()
        return
    ids, scores = out
    assert ids.dtype == np.int32 and scores.dtype == np.float32 and ids.shape == scores.shape
    padded = ids < 0
    assert (ids[padded] == -1).all() and np.isneginf(scores[padded]).all()
    assert np.isfinite(scores[~padded]).all()
    for row_ids, row_scores in zip(ids, scores):
        real = row_ids >= 0
        assert not real[np.argmin(real) :].any() or real.all()  # padding only at the end
        assert (np.diff(row_scores[real]) <= 1e-6).all()  # best first


def test_a_call_leaves_the_fitted_state_as_it_was(case):
    _, c = case
    estimator = c.make()
    c.fit(estimator)
    before = {
        k: copy.deepcopy(v)
        for k, v in vars(estimator).items()
        if k.endswith("_") and isinstance(v, np.ndarray)
    }
    first = c.call(estimator)
    again = c.call(estimator)
    for a, b in zip(first[1:], again[1:]):
        np.testing.assert_array_equal(a, b)
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(estimator, k), v)
