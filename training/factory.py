"""Config → library objects: the one place that knows how the two line up."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from recsys import IntroductionRecommender, Network
from training.config import Config
from training.spark import als_factors_on_spark, spark_session

__all__ = ["build_recommender", "fit_recommender", "recommender_params"]

logger = logging.getLogger(__name__)


def recommender_params(config: Config) -> dict:
    c = config.candidates
    return dict(
        pool_size=c.pool_size,
        n_adamic_adar=c.adamic_adar.n,
        three_hop_weight=c.adamic_adar.three_hop_weight,
        three_hop_middles=c.adamic_adar.three_hop_middles,
        n_interests=c.interests.n,
        n_als=c.als.n,
        n_ppr=c.ppr.n,
        interest_max_df=c.interests.max_df,
        als_factors=c.als.factors,
        als_iterations=c.als.iterations,
        als_regularization=c.als.regularization,
        als_alpha=c.als.alpha,
        als_index=c.als.index,
        als_seed=c.als.seed,
        acceptance=config.scoring.model,
        reciprocal=config.scoring.reciprocal,
        validation_fraction=config.scoring.validation_fraction,
        max_training_members=config.scoring.max_training_members,
        fairness=config.scoring.fairness,
        community_feature=config.scoring.community_feature,
        community_partitions=config.rerank.community_partitions,
        rerank=config.rerank.enabled,
        slate_size=config.evaluation.k,
        bridge_weight=config.rerank.bridge_weight,
        degree_penalty=config.rerank.degree_penalty,
        bound_attribute=config.rerank.bound_attribute,
        plus_one=config.rerank.plus_one,
        random_state=config.scoring.seed,
    )


def build_recommender(config: Config) -> IntroductionRecommender:
    return IntroductionRecommender(**recommender_params(config))


def fit_recommender(
    config: Config, network: Network, *, progress: Callable[[str], None] | None = None
) -> IntroductionRecommender:
    """Build the recommender the config names and fit it on ``network``.

    With ``candidates.als.engine: spark`` the member embeddings come from Spark MLlib's ALS
    (same factors, iterations, regularization and alpha, seeded by ``candidates.als.seed``);
    everything else is fitted as usual, and the saved model has the same format either way.
    """
    model = build_recommender(config)
    als = config.candidates.als
    if als.engine == "implicit":
        return model.fit(network, progress=progress)
    if progress is not None:
        progress("embeddings on Spark (MLlib ALS)")
    with spark_session(als.spark_master, app_name="plusone-als") as spark:
        factors = als_factors_on_spark(
            spark,
            network.member_interests,
            factors=als.factors,
            iterations=als.iterations,
            regularization=als.regularization,
            alpha=als.alpha,
            seed=als.seed,
        )
    return _fit_with_factors(model, network, factors, progress=progress)


def _fit_with_factors(
    model: IntroductionRecommender, network: Network, factors: np.ndarray, *, progress
) -> IntroductionRecommender:
    """``model.fit`` with precomputed member embeddings instead of implicit's ALS."""
    return model.fit(network, progress=progress, member_factors=factors)
