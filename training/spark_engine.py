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
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recsys import IntroductionRecommender, load_model
from recsys.metrics import exposure_table_from_sums

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SparkUnavailableError",
    "SparkBatchResult",
    "MIN_JAVA",
    "als_factors_on_spark",
    "check_java",
    "member_attributes_on_spark",
    "rank_on_spark",
    "require_pyspark",
    "slate_metrics_on_spark",
    "spark_batch_job",
    "spark_session",
]

logger = logging.getLogger(__name__)

#: Spark 4 runs on Java 17 or newer.
MIN_JAVA = 17
INSTALL_HINT = "pip install 'plusone[spark]'"


class SparkUnavailableError(RuntimeError):
    """Spark cannot start here: pyspark is not installed, or no Java 17+ is found."""


# --------------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------------


def require_pyspark() -> None:
    """Raise :class:`SparkUnavailableError` naming the install command when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            f"the Spark engine needs pyspark, which is not installed: {INSTALL_HINT}"
        ) from None


def check_java(*, minimum: int = MIN_JAVA) -> str:
    """The ``java`` Spark will start (``$JAVA_HOME/bin/java``, else ``java`` on PATH) and its
    version, checked to be at least ``minimum``; :class:`SparkUnavailableError` otherwise."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    where = f"JAVA_HOME={home}" if home else "PATH"
    if not java or not Path(java).is_file():
        raise SparkUnavailableError(
            f"the Spark engine needs Java {minimum} or newer and found no java on {where}: "
            f"install a JDK (e.g. apt-get install openjdk-{minimum}-jre-headless) or set JAVA_HOME"
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        raise SparkUnavailableError(f"cannot run {java} -version: {err}") from None
    text = out.stderr + out.stdout
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not found:
        raise SparkUnavailableError(
            f"cannot tell the Java version of {java}: {text.strip()[:200]!r}"
        )
    major = int(found.group(1))
    if major == 1:  # "1.8.0_392" is Java 8
        major = int(found.group(2) or 0)
    if major < minimum:
        raise SparkUnavailableError(
            f"the Spark engine needs Java {minimum} or newer; {java} is Java {major}: "
            f"install openjdk-{minimum} or point JAVA_HOME at a newer JDK"
        )
    return f"{java}: Java {major}"


def _under_spark_submit() -> bool:
    """``spark-submit`` started this process and its JVM: the master and Java are its business."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextlib.contextmanager
def spark_session(
    master: str | None = None, *, app_name: str = "plusone", conf: dict[str, str] | None = None
) -> Iterator[SparkSession]:
    """A SparkSession for a job; stopped at the end only if this call started it.

    ``master`` ``None`` means the one ``spark-submit`` gave, else ``local[*]``. An active
    session (a test's, a notebook's) is used as it is. Executors get single-threaded BLAS and
    OpenMP: Spark already runs one task per core. With a ``local`` master the Python workers
    are this interpreter (``PYSPARK_PYTHON`` unless set); on a cluster they are whatever
    ``PYSPARK_PYTHON`` / ``spark.pyspark.python`` names, with ``plusone`` installed.
    """
    require_pyspark()
    # pyspark 4.x warns on every pandas conversion that pandas 3 is new to it; we convert via Arrow
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if master is not None and active.sparkContext.master != master:
            logger.warning(
                "using the active Spark session (master %s), not %s",
                active.sparkContext.master,
                master,
            )
        yield active
        return
    builder = SparkSession.builder.appName(app_name)
    if not _under_spark_submit():
        logger.info("%s", check_java())
        master = master or "local[*]"
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    elif master is not None:
        builder = builder.master(master)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "true" if sys.stderr.isatty() else "false",
        # the preference lists of every ranked member come back to the driver for the global
        # assignment (about 0.7 GB per million members at k = 20): no cap on collected results
        "spark.driver.maxResultSize": "0",
        "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
        "spark.executorEnv.OMP_NUM_THREADS": "1",
        "spark.executorEnv.MKL_NUM_THREADS": "1",
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logger.info(
        "Spark %s, master %s, %d default partitions",
        spark.version,
        spark.sparkContext.master,
        spark.sparkContext.defaultParallelism,
    )
    try:
        yield spark
    finally:
        spark.stop()


# --------------------------------------------------------------------------------------------
# batch ranking
# --------------------------------------------------------------------------------------------

#: Models loaded in this Python worker, by (directory, SHA-256 of its manifest). Spark reuses
#: Python workers across tasks, so each worker reads a model once, not once per task.
_WORKER_MODELS: dict[tuple[str, str], IntroductionRecommender] = {}


def _manifest_sha(model_dir: str) -> str:
    return hashlib.sha256((Path(model_dir) / "manifest.json").read_bytes()).hexdigest()


def _worker_model(model_dir: str, manifest_sha: str) -> IntroductionRecommender:
    key = (model_dir, manifest_sha)
    model = _WORKER_MODELS.get(key)
    if model is None:
        from recsys import ModelFormatError

        found = _manifest_sha(model_dir)
        if found != manifest_sha:
            raise ModelFormatError(
                f"{model_dir}: the model changed after the driver read it (manifest SHA-256 "
                f"{found[:12]}, "
                f"expected {manifest_sha[:12]}); rank again once it is stable"
            )
        _WORKER_MODELS.clear()  # one model per worker at a time: they are large
        model = load_model(model_dir)
        _WORKER_MODELS[key] = model
    return model


def _list_array(matrix: np.ndarray) -> pa.ListArray:
    """(n, L) array → Arrow list<L values> per row, without a Python object per row."""
    n, width = matrix.shape
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


def _rank_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    model_dir: str,
    manifest_sha: str,
    k: int,
    batch_size: int,
    lists: bool,
) -> Iterator[pa.RecordBatch]:
    """One partition's members, ranked block by block (blocks of ``batch_size`` positions).

    Module-level (so Spark pickles it by reference and the worker's model cache survives);
    the partition's input is member rows only, small enough to gather before ranking.
    """
    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    table = pa.Table.from_batches(parts)
    position = table.column("position").to_numpy()
    rows = table.column("member_row").to_numpy()
    order = np.argsort(position, kind="stable")
    position, rows = position[order], rows[order].astype(np.int64)
    block = position // batch_size
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    model = _worker_model(model_dir, manifest_sha)
    for s, e in zip(starts, ends):
        if lists:
            ids, scores, outside = model.preference_lists(rows[s:e], k, batch_size=batch_size)
            columns = [
                pa.array(position[s:e]),
                _list_array(ids),
                _list_array(scores),
                _list_array(outside),
            ]
            names = ["position", "ids", "scores", "outside"]
        else:
            ids, scores = model.rank(rows[s:e], k)
            columns = [pa.array(position[s:e]), _list_array(ids), _list_array(scores)]
            names = ["position", "ids", "scores"]
        yield pa.RecordBatch.from_arrays(columns, names=names)


def _matrix(column: pa.ChunkedArray, n: int, dtype) -> np.ndarray:
    """Arrow list column of n equal-length lists → (n, L) array."""
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    if n == 0:
        return np.empty((0, 0), dtype=dtype)
    if len(values) % n:
        raise RuntimeError(
            f"Spark returned lists of unequal length ({len(values)} values for {n} members)"
        )
    return np.asarray(values, dtype=dtype).reshape(n, len(values) // n)


def rank_on_spark(
    spark: SparkSession,
    model: IntroductionRecommender,
    model_dir: str | os.PathLike,
    member_rows: np.ndarray,
    *,
    k: int = 20,
    batch_size: int = 2000,
) -> tuple[np.ndarray, np.ndarray]:
    """Slates for many members, ranked on Spark; equal to ``model.rank_batch(member_rows, k,
    batch_size=batch_size)``.

    Parameters
    ----------
    spark : SparkSession
    model : IntroductionRecommender
        The driver's copy of the saved model in ``model_dir`` (it runs the global assignment).
    model_dir : path
        The saved model, at a path every executor can read (shared storage on a cluster).
    member_rows : (R,) int array
        Members to rank; capacity is shared by all of them.
    k : int
        Slate size.
    batch_size : int
        Members per block: a block is one Spark task and one batch of the library's ranking.

    Returns
    -------
    ids : (R, k) int32, padded with -1
    scores : (R, k) float32, padded with -inf, best first
    """
    from pyspark.sql import functions as F

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rows = np.atleast_1d(np.asarray(member_rows))
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise TypeError("member_rows must be a 1-d array of integer member rows")
    rows = rows.astype(np.int64)
    n = len(rows)
    if n == 0:
        return np.empty((0, k), np.int32), np.empty((0, k), np.float32)
    if rows.min() < 0 or rows.max() >= model.network_.n_members:
        bad = rows[(rows < 0) | (rows >= model.network_.n_members)][0]
        raise IndexError(f"member row {int(bad)} is outside 0..{model.network_.n_members - 1}")
    model_dir = str(
        Path(model_dir).resolve()
    )  # executors open the same path: shared storage on a cluster
    sha = _manifest_sha(model_dir)
    if np.array_equal(rows, np.arange(n)):  # --members all: nothing to ship from the driver
        members = spark.range(n).select(
            F.col("id").alias("position"), F.col("id").alias("member_row")
        )
    else:
        members = spark.createDataFrame(
            pa.table({"position": np.arange(n, dtype=np.int64), "member_row": rows})
        )
    n_blocks = -(-n // batch_size)
    members = members.withColumn(
        "block", F.floor(F.col("position") / batch_size)
    ).repartitionByRange(n_blocks, "block")
    lists = bool(model.rerank)
    schema = "position long, ids array<int>, scores array<float>" + (
        ", outside array<boolean>" if lists else ""
    )
    ranked = members.select("position", "member_row").mapInArrow(
        functools.partial(
            _rank_partition,
            model_dir=model_dir,
            manifest_sha=sha,
            k=k,
            batch_size=batch_size,
            lists=lists,
        ),
        schema,
    )
    started = time.perf_counter()
    table = ranked.toArrow()
    position = table.column("position").to_numpy()
    if len(position) != n or not np.array_equal(np.sort(position), np.arange(n)):
        raise RuntimeError(f"Spark returned {len(position)} ranked members for the {n} asked")
    order = np.argsort(position)
    ids = _matrix(table.column("ids"), n, np.int32)[order]
    scores = _matrix(table.column("scores"), n, np.float32)[order]
    logger.info(
        "ranked %d members on Spark in %.1f s (%d blocks)",
        n,
        time.perf_counter() - started,
        n_blocks,
    )
    if not lists:
        return ids, scores
    outside = _matrix(table.column("outside"), n, bool)[order]
    del table
    return model.assign(rows, ids, scores, outside, k)


# --------------------------------------------------------------------------------------------
# reach and equity metrics
# --------------------------------------------------------------------------------------------


def _gini_from_histogram(values: np.ndarray, counts: np.ndarray) -> float:
    """:func:`recsys._metrics.gini` of a multiset given as distinct ``values`` with ``counts``.

    Sorted ascending, the members holding value ``v`` fill positions ``s+1 .. s+c``, whose
    weights ``2i - n - 1`` sum to ``c (2s + c - n)``: the sorted-form Gini needs only the
    histogram, which Spark aggregates to a few hundred rows however many members there are.
    """
    order = np.argsort(values)
    v, c = values[order].astype(np.float64), counts[order].astype(np.float64)
    n = c.sum()
    total = float((v * c).sum())
    if total == 0 or n == 0:
        return 0.0
    before = np.concatenate([[0.0], np.cumsum(c)[:-1]])
    g = float((v * c * (2 * before + c - n)).sum() / (n * total))
    return min(max(g, 0.0), 1.0)


def _atkinson_from_histogram(values: np.ndarray, counts: np.ndarray, *, epsilon: float) -> float:
    """:func:`recsys._metrics.atkinson` of a multiset given as a histogram."""
    v, c = values.astype(np.float64), counts.astype(np.float64)
    n = c.sum()
    top = v.max() if len(v) else 0.0
    if epsilon == 0 or n == 0 or top <= 0:
        return 0.0
    y = v / top  # scale-invariant
    mean = float((y * c).sum() / n)
    has_zero = bool(((y == 0) & (c > 0)).any())
    if epsilon >= 1 and has_zero:
        return 1.0
    pos = y > 0
    if epsilon == 1:
        ede = float(np.exp((c[pos] * np.log(y[pos])).sum() / n))
    else:
        ede = float(((c[pos] * y[pos] ** (1 - epsilon)).sum() / n) ** (1 / (1 - epsilon)))
    return min(max(1.0 - ede / mean, 0.0), 1.0)


def _exposure_table(
    figures: pd.DataFrame, *, n_members: int, total: float, min_group_size: int
) -> pd.DataFrame:
    """Per-group ``members, exposure`` sums → the table of
    :func:`recsys._metrics.group_exposure_table`.
    """
    figures = figures.sort_values("group").reset_index(drop=True)
    return exposure_table_from_sums(
        figures["group"].astype(str).to_numpy(dtype=object),
        figures["members"].to_numpy(dtype=np.int64),
        figures["exposure"].to_numpy(dtype=np.float64),
        n_members=n_members,
        total=total,
        min_group_size=min_group_size,
    )


def _min_over_max(ratios: np.ndarray) -> float:
    if len(ratios) < 2 or np.isnan(ratios).any() or ratios.max() <= 0:
        return float("nan")
    return float(ratios.min() / ratios.max())


def slate_metrics_on_spark(
    slates: DataFrame,
    members: DataFrame,
    *,
    neighbours: DataFrame,
    ranked: DataFrame,
    sensitive_attributes: tuple[str, ...] | list[str] = (),
    min_group_size: int = 20,
    atkinson_epsilon: float = 0.5,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """The reach and equity metrics of DESIGN.md over a whole batch output, as Spark aggregations.

    Same names and definitions as :func:`recsys.evaluate_slates` (without the held-out
    relevance figures, which need a hold-out): ``coverage``, ``bridge_rate``,
    ``exposure_gini``, ``exposure_atkinson``, ``max_inbound_share``, ``plus_one_balance`` (and
    ``plus_one_balance_pledged`` when a ranked member keeps the +1 balance),
    ``mean_slate_size`` and ``equity/ATTR/exposure_ratio``. Exposure is counted per member by a
    ``groupBy``; the inequality indices come from the histogram of exposure counts; "inside the
    network" is a connection or a shared connection (``arrays_overlap`` of neighbour lists).
    Groups of fewer than ``min_group_size`` members are suppressed exactly as locally.

    Parameters
    ----------
    slates : DataFrame
        The batch output: ``member_id``, ``other_id`` (strings), one row per introduction.
    members : DataFrame
        Every member of the model: ``member_id`` (string), ``row`` (long), ``community``
        (int), ``plus_one_required`` (bool) and one label column per sensitive attribute
        (missing already ``"undisclosed"``).
    neighbours : DataFrame
        ``row`` (long), ``neighbours`` (array<int>): the training graph the model was fitted on.
    ranked : DataFrame
        ``member_id`` of every ranked member, including those whose slate came out empty.
    sensitive_attributes : sequence of str
        Columns of ``members`` to measure equity over.

    Returns
    -------
    metrics : dict of name → float
    tables : dict ``equity/ATTR/exposure`` → per-group DataFrame (aggregates only)
    """
    from pyspark.sql import functions as F

    ids = members.select("member_id", "row")
    # a pair counts once, as locally (recsys slates never repeat an id anyway)
    pairs = (
        slates.select("member_id", "other_id")
        .dropDuplicates()
        .join(ids.withColumnRenamed("row", "u"), on="member_id", how="left")
        .join(
            ids.withColumnRenamed("member_id", "other_id").withColumnRenamed("row", "v"),
            on="other_id",
            how="left",
        )
        .cache()
    )
    try:
        checked = pairs.agg(
            F.count("*").alias("pairs"),
            F.sum(F.col("u").isNull().cast("long")).alias("bad_u"),
            F.sum(F.col("v").isNull().cast("long")).alias("bad_v"),
        ).collect()[0]
        if checked["bad_u"] or checked["bad_v"]:
            side = "member_id" if checked["bad_u"] else "other_id"
            bad = (
                pairs.filter(F.col("u" if side == "member_id" else "v").isNull())
                .limit(1)
                .collect()[0][side]
            )
            raise ValueError(
                f"the batch output names member {bad!r} ({side}), who is not in the model"
            )
        return _slate_metrics(
            pairs.select("u", "v"),
            int(checked["pairs"]),
            members,
            neighbours,
            ranked,
            tuple(sensitive_attributes),
            min_group_size,
            atkinson_epsilon,
        )
    finally:
        pairs.unpersist()


def _slate_metrics(
    pairs, n_pairs, members, neighbours, ranked, attributes, min_group_size, atkinson_epsilon
):
    from pyspark.sql import functions as F

    slates = (
        ranked.select("member_id")
        .distinct()
        .join(members, on="member_id", how="inner")
        .agg(
            F.count("*").alias("n"), F.max(F.col("plus_one_required").cast("int")).alias("pledged")
        )
        .collect()[0]
    )
    n_slates, any_pledged = int(slates["n"]), bool(slates["pledged"])
    metrics: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}

    # exposure: slates each member appears in (zero for those in none); its histogram is small
    counts = pairs.groupBy("v").agg(F.count("*").alias("exposure")).withColumnRenamed("v", "row")
    exposure = members.join(counts, on="row", how="left").fillna(0, subset=["exposure"]).cache()
    try:
        hist = exposure.groupBy("exposure").count().toPandas()
        values = hist["exposure"].to_numpy(dtype=np.int64)
        freq = hist["count"].to_numpy(dtype=np.int64)
        n_members = int(freq.sum())
        total = float((values * freq).sum())
        metrics["coverage"] = (
            float(freq[values > 0].sum() / n_members) if n_members else float("nan")
        )
        metrics["exposure_gini"] = _gini_from_histogram(values, freq)
        metrics["exposure_atkinson"] = _atkinson_from_histogram(
            values, freq, epsilon=atkinson_epsilon
        )
        if n_slates == 0:
            metrics["max_inbound_share"] = float("nan")
        else:
            metrics["max_inbound_share"] = float(values.max() / n_slates) if total > 0 else 0.0
        if attributes:  # every attribute's groups in one aggregation
            long = functools.reduce(
                lambda a, b: a.unionByName(b),
                [
                    exposure.select(
                        F.lit(attr).alias("attribute"), F.col(attr).alias("group"), "exposure"
                    )
                    for attr in attributes
                ],
            )
            figures = (
                long.groupBy("attribute", "group")
                .agg(F.count("*").alias("members"), F.sum("exposure").alias("exposure"))
                .toPandas()
            )
            for attr in attributes:
                table = _exposure_table(
                    figures[figures["attribute"] == attr],
                    n_members=n_members,
                    total=total,
                    min_group_size=min_group_size,
                )
                tables[f"equity/{attr}/exposure"] = table
                metrics[f"equity/{attr}/exposure_ratio"] = _min_over_max(
                    table.loc[~table["suppressed"], "ratio"].to_numpy(dtype=np.float64)
                )
    finally:
        exposure.unpersist()

    # per pair: across communities (bridge_rate); inside the network = the same member, a
    # connection, or a connection's connection (plus_one_balance)
    node = members.select("row", "community", "plus_one_required").join(
        neighbours, on="row", how="left"
    )
    u_side = node.select(
        F.col("row").alias("u"),
        F.col("community").alias("cu"),
        F.col("neighbours").alias("nu"),
        "plus_one_required",
    )
    v_side = node.select(
        F.col("row").alias("v"), F.col("community").alias("cv"), F.col("neighbours").alias("nv")
    )
    inside = (F.col("u") == F.col("v")) | F.coalesce(
        F.array_contains(F.col("nu"), F.col("v").cast("int"))
        | F.arrays_overlap(F.col("nu"), F.col("nv")),
        F.lit(False),
    )
    figures = (
        pairs.join(u_side, on="u")
        .join(v_side, on="v")
        .groupBy("u")
        .agg(
            F.count("*").alias("total"),
            F.sum(inside.cast("long")).alias("inside"),
            F.sum((F.col("cu") != F.col("cv")).cast("long")).alias("bridged"),
            F.first("plus_one_required").alias("required"),
        )
        .withColumn(
            "balanced", ((F.col("total") - F.col("inside")) >= F.col("inside")).cast("double")
        )
        .agg(
            F.sum("bridged").alias("bridged"),
            F.avg("balanced").alias("balanced"),
            F.avg(F.when(F.col("required"), F.col("balanced"))).alias("pledged"),
        )
        .collect()[0]
    )
    metrics["bridge_rate"] = float(figures["bridged"] / n_pairs) if n_pairs else float("nan")
    metrics["plus_one_balance"] = (
        float("nan") if figures["balanced"] is None else float(figures["balanced"])
    )
    if any_pledged:
        metrics["plus_one_balance_pledged"] = (
            float("nan") if figures["pledged"] is None else float(figures["pledged"])
        )
    metrics["mean_slate_size"] = float(n_pairs / n_slates) if n_slates else 0.0
    return metrics, tables


def model_members_on_spark(
    spark: SparkSession, model: IntroductionRecommender, attributes: DataFrame | None = None
) -> DataFrame:
    """The model's members as a DataFrame (``member_id, row, community, plus_one_required``),
    joined with ``attributes`` (``member_id`` + label columns, see
    :func:`member_attributes_on_spark`)."""
    n = model.network_.n_members
    frame = spark.createDataFrame(
        pa.table(
            {
                "member_id": pa.array(model.network_.member_ids.astype(str), pa.string()),
                "row": np.arange(n, dtype=np.int64),
                "community": np.asarray(model.communities_, dtype=np.int32),
                "plus_one_required": np.asarray(
                    model.reranker_.required_rows(np.arange(n)), dtype=bool
                ),
            }
        )
    )
    if attributes is None:
        return frame
    from pyspark.sql import functions as F

    joined = frame.join(attributes, on="member_id", how="left")
    missing = joined.filter(F.col("_present").isNull()).limit(1).collect()
    if missing:
        raise ValueError(
            f"member {missing[0]['member_id']!r} of the model is not in the member table"
        )
    return joined.drop("_present")


def neighbours_on_spark(spark: SparkSession, adjacency: sp.csr_matrix) -> DataFrame:
    """``row, neighbours`` of a CSR adjacency: its own ``indptr``/``indices`` as one Arrow list
    column.
    """
    adjacency = sp.csr_matrix(adjacency)
    if adjacency.nnz >= 2**31:
        raise ValueError(
            "the training graph has 2^31 or more directed connections: too many for one "
            "Arrow list column"
        )
    lists = pa.ListArray.from_arrays(
        pa.array(adjacency.indptr.astype(np.int32)), pa.array(adjacency.indices.astype(np.int32))
    )
    return spark.createDataFrame(
        pa.table({"row": np.arange(adjacency.shape[0], dtype=np.int64), "neighbours": lists})
    )


def member_attributes_on_spark(
    spark: SparkSession,
    source: str | os.PathLike | pd.DataFrame,
    attributes: tuple[str, ...] | list[str],
) -> DataFrame:
    """``member_id`` and one label column per sensitive attribute, read with Spark.

    ``source`` is an input-layout directory (its ``members.csv``, ``.csv.gz`` or ``.parquet``)
    or a members table already in memory. Labels follow :func:`recsys.load_network`: text as
    written; missing, blank and (in CSV) the NA tokens are ``"undisclosed"``.
    """
    from pyspark.sql import functions as F

    from recsys.data import NA_TOKENS, UNDISCLOSED

    attributes = list(attributes)
    if isinstance(source, pd.DataFrame):
        frame = source[["member_id", *attributes]].copy()
        for column in frame.columns:
            frame[column] = frame[column].astype("string")
        table, csv = spark.createDataFrame(frame), False
    else:
        root = Path(source)
        found = [
            root / f"members{ext}"
            for ext in (".csv", ".csv.gz", ".parquet")
            if (root / f"members{ext}").is_file()
        ]
        if len(found) != 1:
            what = (
                "no members table"
                if not found
                else "two members tables (" + ", ".join(p.name for p in found) + ")"
            )
            raise FileNotFoundError(
                f"{root}: {what}; expected one of members.csv, members.csv.gz, members.parquet"
            )
        path, csv = found[0], not found[0].name.endswith(".parquet")
        reader = spark.read
        table = (
            reader.option("header", True).option("inferSchema", False).csv(str(path))
            if csv
            else reader.parquet(str(path))
        )
        absent = [c for c in ["member_id", *attributes] if c not in table.columns]
        if absent:
            raise ValueError(
                f"{path}: no column {absent[0]!r} (columns: {', '.join(table.columns)})"
            )
    labels = []
    for attr in attributes:
        text = F.col(attr).cast("string")
        blank = text.isNull() | (F.trim(text) == "")
        if csv:
            blank = blank | F.trim(text).isin(list(NA_TOKENS))
        labels.append(F.when(blank, F.lit(UNDISCLOSED)).otherwise(text).alias(attr))
    return table.select(
        F.col("member_id").cast("string").alias("member_id"),
        *labels,
        F.lit(True).alias("_present"),
    )


# --------------------------------------------------------------------------------------------
# the batch job of `recsys rank --engine spark`
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkBatchResult:
    rows_written: int
    members: int
    seconds: float
    metrics: dict[str, float] | None
    run_id: str | None


def spark_batch_job(
    model: IntroductionRecommender,
    model_dir: str | os.PathLike,
    member_rows: np.ndarray,
    *,
    k: int,
    output: Path,
    master: str | None = None,
    metrics: bool = False,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 2000,
    conf: dict[str, str] | None = None,
) -> SparkBatchResult:
    """Rank ``member_rows`` on Spark and write ``output`` (DESIGN.md columns, atomically).

    With ``metrics`` the reach and equity figures of the written output are computed on Spark
    and logged as one MLflow run (the model's config as params; tags ``engine=spark``,
    ``job=batch_ranking``), FAILED if any step fails. Sensitive attributes come from the
    member table of ``data_dir``, else of the data the model's config names.
    """
    from training.batch import slates_frame, write_slates_file
    from training.config import Config
    from training.data import dataset_name, sensitive_attributes
    from training.tracking import log_metrics, tracked_run

    config = Config.from_dict(
        getattr(model, "manifest_", {}).get("config") or {}, source=f"{model_dir}/manifest.json"
    )
    tags = {"dataset": dataset_name(config), "engine": "spark", "job": "batch_ranking"}
    with spark_session(master, app_name="plusone-rank", conf=conf) as spark:
        run = (
            tracked_run(config, run_name=f"{tags['dataset']}-batch-spark", tags=tags)
            if metrics
            else contextlib.nullcontext()
        )
        with run as mlflow:
            started = time.perf_counter()
            ids, scores = rank_on_spark(
                spark, model, model_dir, member_rows, k=k, batch_size=batch_size
            )
            seconds = time.perf_counter() - started
            written = write_slates_file(slates_frame(model, member_rows, ids, scores), output)
            found = None
            if metrics:
                found, tables = _output_metrics(
                    spark,
                    model,
                    member_rows,
                    output,
                    config=config,
                    data_dir=data_dir,
                    attributes=sensitive_attributes(config),
                )
                found.update(
                    {
                        "batch/members": float(len(member_rows)),
                        "batch/ranking_seconds": seconds,
                        "batch/members_per_second": len(member_rows) / max(seconds, 1e-9),
                    }
                )
                if mlflow is not None:
                    mlflow.log_params(
                        {
                            "batch.k": k,
                            "batch.engine": "spark",
                            "batch.spark_master": spark.sparkContext.master,
                            "batch.output": str(output),
                        }
                    )
                    log_metrics(mlflow, found)
                    for name, table in tables.items():
                        mlflow.log_text(
                            table.to_csv(index=False), f"groups/{name.replace('/', '__')}.csv"
                        )
            run_id = mlflow.active_run().info.run_id if mlflow is not None else None
    return SparkBatchResult(
        rows_written=written,
        members=len(member_rows),
        seconds=seconds,
        metrics=found,
        run_id=run_id,
    )


def _output_metrics(
    spark, model, member_rows, output: Path, *, config, data_dir, attributes
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Metrics of the written batch output, read back with Spark."""
    from recsys import generate_tables

    path = str(Path(output).resolve())
    if path.endswith(".parquet"):
        slates = spark.read.parquet(path)
    else:
        slates = (
            spark.read.option("header", True)
            .schema("member_id string, rank int, other_id string, score float")
            .csv(path)
        )
    if attributes:
        source = data_dir or config.data.path
        if source is None:  # the built-in synthetic network: regenerate its member table
            s = config.synthetic
            source = generate_tables(s.members, seed=s.seed, minority_share=s.minority_share)[
                "members"
            ]
        labels = member_attributes_on_spark(spark, source, attributes)
    else:
        labels = None
    members = model_members_on_spark(spark, model, labels).cache()
    try:
        if len(np.unique(member_rows)) == model.network_.n_members:  # every member
            ranked = members
        else:
            ranked = spark.createDataFrame(
                pa.table({"row": np.asarray(member_rows, dtype=np.int64)})
            ).join(members, on="row")
        return slate_metrics_on_spark(
            slates,
            members,
            neighbours=neighbours_on_spark(spark, model.network_.adjacency),
            ranked=ranked.select("member_id"),
            sensitive_attributes=attributes,
            min_group_size=config.data.min_group_size,
            atkinson_epsilon=config.evaluation.atkinson_epsilon,
        )
    finally:
        members.unpersist()


# --------------------------------------------------------------------------------------------
# ALS
# --------------------------------------------------------------------------------------------


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
        vectors[rows] = _matrix(table.column("features"), len(rows), np.float32)
    vectors[np.diff(matrix.indptr) == 0] = 0.0
    return normalize(vectors).astype(np.float32)
