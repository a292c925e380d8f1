"""Plus One on Spark: batch ranking, reach and equity metrics, and MLlib ALS, for platforms that
outgrow one machine.

There is no second ranking code path, and the driver holds neither the model nor a preference
list. Executors rank with the library's own batched methods on the saved model, which each node
verifies once and its Python workers memory-map (one copy in the page cache per node,
:mod:`training.spark._worker`):

1. the members to rank become a DataFrame of ``(position, member_row)``, cut into blocks of
   ``batch_size`` consecutive positions, one block per partition;
2. ``mapInArrow`` makes each block's preference lists with
   :meth:`IntroductionRecommender.preference_lists` (or ranks it with
   :meth:`~IntroductionRecommender.rank` when the model does not re-rank), exactly the batches
   the local :meth:`~IntroductionRecommender.rank_batch` makes;
3. the global assignment runs as Spark rounds over those lists (:mod:`training.spark._assign`):
   capacity holds across all partitions, with the +1 quota and the least-exposed places of
   :func:`recsys.assign_slates`, so the two engines give the same slates;
4. the executors write the output as a directory of Parquet files (:func:`write_slates_on_spark`).

Metrics are Spark aggregations over the written batch output and the member table (see
:func:`slate_metrics_on_spark`), with the same names, definitions and small-group suppression as
:func:`recsys.evaluate_slates`. :func:`als_factors_on_spark` fits the member embeddings with
MLlib's implicit-feedback ALS in the format of ``fit_als_factors``.

Needs ``pip install 'plusone[spark]'`` and Java 17 or newer. Arrow rather than pandas carries
the lists between the JVM and Python (``mapInArrow``): a list of 120 scores per member moves as
one buffer, not as a Python object per member.

Modules: ``_session`` (the session, and the pyspark and Java checks), ``_worker`` (the model in
the Python workers), ``_ranking`` (distributed batch ranking), ``_assign`` (the assignment as
Spark rounds), ``_output`` (the executors' output), ``_metrics`` (slate metrics and member
tables on Spark), ``_als`` (MLlib ALS), ``_batch`` (the job of ``recsys rank --engine spark``)
and ``_arrow`` (lists between numpy and Arrow).
"""

from training.spark._als import als_factors_on_spark
from training.spark._assign import AssignmentReport, assign_on_spark
from training.spark._batch import SparkBatchResult, spark_batch_job
from training.spark._metrics import (
    member_attributes_on_spark,
    members_from_workers,
    model_members_on_spark,
    neighbours_from_workers,
    neighbours_on_spark,
    slate_metrics_on_spark,
)
from training.spark._output import write_slates_on_spark
from training.spark._ranking import (
    SparkSlates,
    member_rows_of,
    rank_on_spark,
    slates_on_spark,
)
from training.spark._session import (
    INSTALL_HINT,
    MIN_JAVA,
    SparkUnavailableError,
    check_java,
    require_pyspark,
    spark_session,
)
from training.spark._worker import manifest_sha, node_model_dir, worker_model

__all__ = [
    "INSTALL_HINT",
    "MIN_JAVA",
    "AssignmentReport",
    "SparkBatchResult",
    "SparkSlates",
    "SparkUnavailableError",
    "als_factors_on_spark",
    "assign_on_spark",
    "check_java",
    "manifest_sha",
    "member_attributes_on_spark",
    "member_rows_of",
    "members_from_workers",
    "model_members_on_spark",
    "neighbours_from_workers",
    "neighbours_on_spark",
    "node_model_dir",
    "rank_on_spark",
    "require_pyspark",
    "slate_metrics_on_spark",
    "slates_on_spark",
    "spark_batch_job",
    "spark_session",
    "worker_model",
    "write_slates_on_spark",
]
