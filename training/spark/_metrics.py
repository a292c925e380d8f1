"""Reach and equity metrics of a batch output as Spark aggregations, and the member tables they
read (members with their communities and labels, neighbour lists of the training graph)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from recsys import IntroductionRecommender
from recsys.data import NA_TOKENS, UNDISCLOSED
from recsys.metrics import atkinson, exposure_table_from_sums, gini
from training.spark._worker import worker_model

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "member_attributes_on_spark",
    "members_from_workers",
    "model_members_on_spark",
    "neighbours_from_workers",
    "neighbours_on_spark",
    "slate_metrics_on_spark",
]


def _exposure_table(
    figures: pd.DataFrame, *, n_members: int, total: float, min_group_size: int
) -> pd.DataFrame:
    """Per-group ``members, exposure`` sums → the table of
    :func:`recsys.metrics.group_exposure_table`.
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
        # Spark aggregates exposure to a histogram of a few hundred rows however many members
        # there are: the library's indices take it as values with frequency weights
        metrics["exposure_gini"] = gini(values, weights=freq) if n_members else 0.0
        metrics["exposure_atkinson"] = (
            atkinson(values, epsilon=atkinson_epsilon, weights=freq) if n_members else 0.0
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
    return _with_attributes(frame, attributes)


def _with_attributes(frame: DataFrame, attributes: DataFrame | None) -> DataFrame:
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


def _member_rows(batches) -> Iterator[np.ndarray]:
    for batch in batches:
        if batch.num_rows:
            yield batch.column(0).to_numpy().astype(np.int64)


def _members_partition(batches, *, model_dir: str, sha: str) -> Iterator[pa.RecordBatch]:
    model = None
    for rows in _member_rows(batches):
        model = model or worker_model(model_dir, sha)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(np.asarray(model.network_.member_ids[rows]).astype(str), pa.string()),
                pa.array(rows),
                pa.array(np.asarray(model.communities_[rows], dtype=np.int32)),
                pa.array(np.asarray(model.reranker_.required_rows(rows), dtype=bool)),
            ],
            names=["member_id", "row", "community", "plus_one_required"],
        )


def _neighbours_partition(batches, *, model_dir: str, sha: str) -> Iterator[pa.RecordBatch]:
    model = None
    for rows in _member_rows(batches):
        model = model or worker_model(model_dir, sha)
        part = model.network_.adjacency[rows]
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(rows),
                pa.ListArray.from_arrays(
                    pa.array(part.indptr.astype(np.int32)),
                    pa.array(part.indices.astype(np.int32)),
                ),
            ],
            names=["row", "neighbours"],
        )


def _rows_frame(spark: SparkSession, n_members: int) -> DataFrame:
    return spark.range(n_members, numPartitions=max(1, -(-n_members // 200_000)))


def members_from_workers(
    spark: SparkSession,
    model_dir: str,
    sha: str,
    n_members: int,
    attributes: DataFrame | None = None,
) -> DataFrame:
    """:func:`model_members_on_spark` made by the executors from their copy of the model (the
    driver does not load it)."""
    frame = _rows_frame(spark, n_members).mapInArrow(
        functools.partial(_members_partition, model_dir=model_dir, sha=sha),
        "member_id string, row long, community int, plus_one_required boolean",
    )
    return _with_attributes(frame, attributes)


def neighbours_from_workers(
    spark: SparkSession, model_dir: str, sha: str, n_members: int
) -> DataFrame:
    """:func:`neighbours_on_spark` made by the executors from their copy of the model."""
    return _rows_frame(spark, n_members).mapInArrow(
        functools.partial(_neighbours_partition, model_dir=model_dir, sha=sha),
        "row long, neighbours array<int>",
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
