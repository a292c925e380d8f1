"""Member embeddings from Spark MLlib's ALS (``candidates.als.engine: spark``)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from training.spark._arrow import list_matrix

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import SparkSession

__all__ = ["als_factors_on_spark"]

logger = logging.getLogger(__name__)


def als_factors_on_spark(
    spark: SparkSession,
    member_interests: sp.csr_matrix,
    *,
    factors: int,
    iterations: int,
    regularization: float,
    alpha: float,
    seed: int,
) -> np.ndarray:
    """Member embeddings from Spark MLlib's implicit-feedback ALS, in ``fit_als_factors``' format.

    The same input as the local fit (confidence ``log1p(weight)`` per member × interest) and
    the same hyperparameters, passed to ``pyspark.ml.recommendation.ALS(implicitPrefs=True)``.
    MLlib's formulation differs in two details (confidence ``1 + alpha·r`` where implicit takes
    ``alpha·r``; the L2 penalty scaled by each member's count of interests), so the vectors are
    not implicit's, but they serve the same purpose (see ``benchmarks/spark_bench.py`` for
    agreement of nearest neighbours).

    Returns
    -------
    (n_members, factors) float32, L2-normalised rows; zeros for members with no interests.

    Examples
    --------
    >>> from recsys import synthetic_network
    >>> with spark_session("local[1]") as spark:  # doctest: +SKIP
    ...     vectors = als_factors_on_spark(
    ...         spark, synthetic_network(300).member_interests,
    ...         factors=8, iterations=5, regularization=0.05, alpha=2.0, seed=0)
    >>> vectors.shape, vectors.dtype.name  # doctest: +SKIP
    ((300, 8), 'float32')
    """
    from pyspark.ml.recommendation import ALS

    matrix = sp.csr_matrix(member_interests)
    n = matrix.shape[0]
    if matrix.nnz == 0:
        return np.zeros((n, factors), dtype=np.float32)
    coo = matrix.tocoo()
    ratings = spark.createDataFrame(
        pa.table(
            {
                "member": coo.row.astype(np.int32),
                "interest": coo.col.astype(np.int32),
                "rating": np.log1p(coo.data).astype(np.float32),
            }
        )
    )
    als = ALS(
        rank=factors,
        maxIter=iterations,
        regParam=regularization,
        alpha=alpha,
        implicitPrefs=True,
        seed=seed,
        userCol="member",
        itemCol="interest",
        ratingCol="rating",
    )
    started = time.perf_counter()
    fitted = als.fit(ratings)
    table = fitted.userFactors.toArrow()
    logger.info(
        "MLlib ALS: %d members × %d interests, %d factors, %.1f s",
        n,
        matrix.shape[1],
        factors,
        time.perf_counter() - started,
    )
    vectors = np.zeros((n, factors), dtype=np.float32)
    rows = table.column("id").to_numpy()
    if len(rows):
        vectors[rows] = list_matrix(table.column("features"), len(rows), np.float32)
    vectors[np.diff(matrix.indptr) == 0] = 0.0
    return normalize(vectors).astype(np.float32)
