"""Plus One on Spark: batch ranking, reach and equity metrics, and MLlib ALS, for platforms that
outgrow one machine.

There is no second ranking code path. Executors rank with the library's own batched methods on
the saved model, loaded once per Python worker from a directory every node can read:

1. the members to rank become a DataFrame of ``(position, member_row)``, cut into blocks of
   ``batch_size`` consecutive positions, one block per partition;
2. ``mapInArrow`` ranks each block with :meth:`IntroductionRecommender.preference_lists` (or
   with :meth:`~IntroductionRecommender.rank` when the model does not re-rank), exactly the
   batches the local :meth:`~IntroductionRecommender.rank_batch` makes, so the two engines give
   the same slates;
3. the driver collects the lists as Arrow columns and runs the one global capacity assignment
   (:meth:`~IntroductionRecommender.assign`): capacity holds across partitions, not within each.

Metrics are Spark aggregations over the written batch output and the member table (see
:func:`slate_metrics_on_spark`), with the same names, definitions and small-group suppression as
:func:`recsys.evaluate_slates`. :func:`als_factors_on_spark` fits the member embeddings with
MLlib's implicit-feedback ALS in the format of ``fit_als_factors``.

Needs ``pip install 'plusone[spark]'`` and Java 17 or newer. Arrow rather than pandas carries
the lists between the JVM and Python (``mapInArrow``, ``toArrow``): a list of 80 scores per
member moves as one buffer, not as a Python object per member.

Modules: ``_session`` (the session, and the pyspark and Java checks), ``_ranking`` (distributed
batch ranking), ``_metrics`` (slate metrics and member tables on Spark), ``_als`` (MLlib ALS),
``_batch`` (the job of ``recsys rank --engine spark``) and ``_arrow`` (lists between numpy and
Arrow).
"""

from training.spark._als import als_factors_on_spark
from training.spark._batch import SparkBatchResult, spark_batch_job
from training.spark._metrics import (
    member_attributes_on_spark,
    model_members_on_spark,
    neighbours_on_spark,
    slate_metrics_on_spark,
)
from training.spark._ranking import rank_on_spark
from training.spark._session import (
    INSTALL_HINT,
    MIN_JAVA,
    SparkUnavailableError,
    check_java,
    require_pyspark,
    spark_session,
)

__all__ = [
    "INSTALL_HINT",
    "MIN_JAVA",
    "SparkBatchResult",
    "SparkUnavailableError",
    "als_factors_on_spark",
    "check_java",
    "member_attributes_on_spark",
    "model_members_on_spark",
    "neighbours_on_spark",
    "rank_on_spark",
    "require_pyspark",
    "slate_metrics_on_spark",
    "spark_batch_job",
    "spark_session",
]
