"""Config → library objects: the one place that knows how the two line up."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import numpy as np

from recsys import IntroductionRecommender, Network
from training.config import Config

__all__ = ["build_recommender", "fit_recommender", "recommender_params"]

logger = logging.getLogger(__name__)


def recommender_params(config: Config) -> dict:
    c = config.candidates
    return dict(
        pool_size=c.pool_size,
        n_adamic_adar=c.adamic_adar.n,
        three_hop_weight=c.adamic_adar.three_hop_weight,
        n_interests=c.interests.n,
        n_als=c.als.n,
        interest_max_df=c.interests.max_df,
        als_factors=c.als.factors,
        als_iterations=c.als.iterations,
        als_regularization=c.als.regularization,
        als_alpha=c.als.alpha,
        als_index=c.als.index,
        reciprocal=config.scoring.reciprocal,
        validation_fraction=config.scoring.validation_fraction,
        max_training_members=config.scoring.max_training_members,
        fairness=config.scoring.fairness,
        rerank=config.rerank.enabled,
        bridge_weight=config.rerank.bridge_weight,
        degree_penalty=config.rerank.degree_penalty,
        plus_one=config.rerank.plus_one,
        random_state=config.scoring.seed,
    )


def build_recommender(config: Config) -> IntroductionRecommender:
    return IntroductionRecommender(**recommender_params(config))


def fit_recommender(config: Config, network: Network, *, progress: Callable[[str], None] | None = None) -> IntroductionRecommender:
    """Build the recommender the config names and fit it on ``network``.

    With ``candidates.als.engine: spark`` the member embeddings come from Spark MLlib's ALS
    (same factors, iterations, regularization and alpha, seeded by ``candidates.als.seed``);
    everything else is fitted as usual, and the saved model has the same format either way.
    """
    model = build_recommender(config)
    als = config.candidates.als
    if als.engine == "implicit":
        return model.fit(network, progress=progress)
    from training.spark_engine import als_factors_on_spark, spark_session

    if progress is not None:
        progress("embeddings on Spark (MLlib ALS)")
    with spark_session(als.spark_master, app_name="plusone-als") as spark:
        factors = als_factors_on_spark(
            spark, network.member_interests, factors=als.factors, iterations=als.iterations,
            regularization=als.regularization, alpha=als.alpha, seed=als.seed,
        )
    return _fit_with_factors(model, network, factors, progress=progress)


def _fit_with_factors(model: IntroductionRecommender, network: Network, factors: np.ndarray, *, progress) -> IntroductionRecommender:
    """``model.fit`` with precomputed member embeddings instead of implicit's ALS."""
    if "member_factors" in inspect.signature(model.fit).parameters:
        return model.fit(network, progress=progress, member_factors=factors)
    # Stand-in until IntroductionRecommender.fit takes ``member_factors``: for the duration of
    # this one fit, the library's ALS step returns the given factors. Checked afterwards, so
    # a change in the library cannot make it silently fit implicit's ALS instead.
    import recsys._model as impl

    if factors.shape != (network.n_members, model.als_factors):
        raise ValueError(f"member factors have shape {factors.shape}; the model needs ({network.n_members}, {model.als_factors})")
    library_als = impl.fit_als_factors

    def given_factors(member_interests, **params):
        if member_interests.shape[0] != factors.shape[0]:
            raise ValueError(f"precomputed factors are for {factors.shape[0]} members, the network has {member_interests.shape[0]}")
        return factors

    impl.fit_als_factors = given_factors
    try:
        model.fit(network, progress=progress)
    finally:
        impl.fit_als_factors = library_als
    if not np.array_equal(model.member_factors_, factors):
        raise RuntimeError("IntroductionRecommender.fit did not use the Spark ALS factors; training/factory.py needs updating")
    return model
