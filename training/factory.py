"""Config → library objects: the one place that knows how the two line up."""

from __future__ import annotations

from recsys import IntroductionRecommender
from training.config import Config

__all__ = ["build_recommender", "recommender_params"]


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
