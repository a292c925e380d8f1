"""Distributed batch ranking: blocks of members ranked on the executors with the library's own
batched methods, then the global assignment as Spark rounds (:mod:`training.spark._assign`);
the driver never holds the model or a preference list (see :mod:`training.spark`)."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys import ModelFormatError, plus_one_quota, read_model_manifest
from training.spark._arrow import list_array
from training.spark._assign import SLATE_SCHEMA, AssignmentReport, assign_on_spark
from training.spark._worker import manifest_sha, node_capacity, node_tiebreak, worker_model

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "ModelPlan",
    "SparkSlates",
    "member_rows_of",
    "model_plan",
    "rank_on_spark",
    "slates_on_spark",
]

logger = logging.getLogger(__name__)

LIST_SCHEMA = (
    "position long, member_row long, ids array<int>, scores array<float>, "
    "outside array<boolean>, required boolean, max_inside int, length int"
)


def member_rows_of(model_dir: str | os.PathLike, member_ids) -> np.ndarray:
    """(len(member_ids),) int64 rows of ``member_ids`` in the model, -1 where unknown, found on
    the driver from the model's member table alone (its bytes checked against the manifest)."""
    manifest = read_model_manifest(model_dir)
    data = (Path(model_dir) / "members.parquet").read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("files", {}).get("members.parquet"):
        raise ModelFormatError(
            f"{model_dir}: checksum mismatch for members.parquet: the model is corrupt or was "
            "modified; refusing to load it"
        )
    known = pq.read_table(io.BytesIO(data), columns=["member_id"]).column(0).cast(pa.string())
    found = pc.index_in(pa.array(list(member_ids), pa.string()), value_set=known)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass(frozen=True)
class ModelPlan:
    """What the driver needs to know of the model to plan the job, asked of one executor."""

    n_members: int
    rerank: bool
    floor_slots: int
    floor_depth: int


def _plan_partition(batches, *, model_dir: str, sha: str, k: int) -> Iterator[pa.RecordBatch]:
    for _ in batches:
        pass
    model = worker_model(model_dir, sha)
    slots, depth = model.floor_places(k)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array([model.network_.n_members], pa.int64()),
            pa.array([bool(model.get_params()["rerank"])]),
            pa.array([slots], pa.int32()),
            pa.array([depth], pa.int32()),
        ],
        names=["n_members", "rerank", "floor_slots", "floor_depth"],
    )


def model_plan(spark: SparkSession, model_dir: str, sha: str, *, k: int) -> ModelPlan:
    """:class:`ModelPlan` of the model, from one executor (which verifies and maps it). A model
    the executor refuses (a checksum mismatch, a file missing) raises
    :class:`recsys.ModelFormatError` here with the executor's message, not a Spark trace."""
    from pyspark.errors import PythonException

    try:
        row = (
            spark.range(1, numPartitions=1)
            .mapInArrow(
                functools.partial(_plan_partition, model_dir=model_dir, sha=sha, k=k),
                "n_members long, rerank boolean, floor_slots int, floor_depth int",
            )
            .first()
        )
    except PythonException as err:
        said = re.search(r"ModelFormatError: (.+)", str(err))
        if said:
            raise ModelFormatError(said.group(1).strip()) from None
        raise
    return ModelPlan(int(row[0]), bool(row[1]), int(row[2]), int(row[3]))


def _blocks(batches: Iterator[pa.RecordBatch], batch_size: int):
    """The partition's ``(position, member_row)`` in blocks of ``batch_size`` positions."""
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
    for s, e in zip(starts, ends):
        yield position[s:e], rows[s:e]


def _lists_partition(
    batches: Iterator[pa.RecordBatch], *, model_dir: str, sha: str, k: int, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Each block's preference lists (:meth:`IntroductionRecommender.preference_lists`, the
    batches :meth:`~IntroductionRecommender.rank_batch` makes), with what the assignment reads
    of each row: its +1 quota and the length of its list."""
    model = None
    for position, rows in _blocks(batches, batch_size):
        model = model or worker_model(model_dir, sha)
        ids, scores, outside = model.preference_lists(rows, k, batch_size=batch_size)
        required = model.reranker_.required_rows(rows)
        quota = plus_one_quota(ids, outside, required, k)
        empty = ids < 0
        length = np.where(empty.any(axis=1), empty.argmax(axis=1), ids.shape[1])
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(position),
                pa.array(rows),
                list_array(ids),
                list_array(scores),
                list_array(outside),
                pa.array(required),
                pa.array(quota.astype(np.int32)),
                pa.array(length.astype(np.int32)),
            ],
            names=[
                "position",
                "member_row",
                "ids",
                "scores",
                "outside",
                "required",
                "max_inside",
                "length",
            ],
        )


def _plain_partition(
    batches: Iterator[pa.RecordBatch], *, model_dir: str, sha: str, k: int, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Slates of a model that does not re-rank (:meth:`IntroductionRecommender.rank`), one row
    per filled place."""
    model = None
    for position, rows in _blocks(batches, batch_size):
        model = model or worker_model(model_dir, sha)
        ids, scores = model.rank(rows, k)
        r, c = np.nonzero(ids >= 0)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(position[r]),
                pa.array(c.astype(np.int32)),
                pa.array(ids[r, c].astype(np.int32)),
                pa.array(scores[r, c].astype(np.float32)),
            ],
            names=["position", "slot", "other", "score"],
        )


@dataclass
class SparkSlates:
    """Slates ranked on Spark, not collected: ``slates`` has one row per filled place
    (``position long, member_row long, slot int, other int, score float``; ``slot`` from 0)."""

    slates: DataFrame
    n_slates: int
    plan: ModelPlan
    assignment: AssignmentReport | None
    seconds: dict[str, float]


def _members_frame(spark: SparkSession, member_rows: np.ndarray | None, n: int) -> DataFrame:
    """``position, member_row`` of the members to rank."""
    from pyspark.sql import functions as F

    if member_rows is None:  # every member: nothing to ship from the driver
        return spark.range(n).select(
            F.col("id").alias("position"), F.col("id").alias("member_row")
        )
    return spark.createDataFrame(
        pa.table(
            {
                "position": np.arange(len(member_rows), dtype=np.int64),
                "member_row": np.asarray(member_rows, dtype=np.int64),
            }
        )
    )


def slates_on_spark(
    spark: SparkSession,
    model_dir: str | os.PathLike,
    member_rows: np.ndarray | None = None,
    *,
    k: int = 20,
    batch_size: int = 2000,
    finish_below: int | None = None,
) -> SparkSlates:
    """Rank ``member_rows`` (``None``: every member of the model) on Spark, capacity shared by
    all of them, and assign their slates on Spark; nothing is collected to the driver.

    The slates equal ``model.rank_batch(member_rows, k, batch_size=batch_size)``. ``model_dir``
    must be at a path every executor can read; each node verifies it once and its workers
    memory-map one copy (:mod:`training.spark._worker`). ``finish_below``: see
    :func:`training.spark._assign.assign_on_spark`.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    model_dir = str(Path(model_dir).resolve())  # executors open the same path (shared storage)
    sha = manifest_sha(model_dir)
    n_members = int(read_model_manifest(model_dir)["n_members"])
    if member_rows is not None:
        rows = np.atleast_1d(np.asarray(member_rows))
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise TypeError("member_rows must be a 1-d array of integer member rows")
        if rows.size and (rows.min() < 0 or rows.max() >= n_members):
            bad = rows[(rows < 0) | (rows >= n_members)][0]
            raise IndexError(f"member row {int(bad)} is outside 0..{n_members - 1}")
        member_rows = rows.astype(np.int64)
    n = n_members if member_rows is None else len(member_rows)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    plan = model_plan(spark, model_dir, sha, k=k)
    seconds["plan"] = time.perf_counter() - started
    if n == 0:
        empty = spark.createDataFrame([], f"member_row long, {SLATE_SCHEMA}")
        return SparkSlates(empty, 0, plan, None, seconds)
    n_blocks = -(-n // batch_size)
    members = _members_frame(spark, member_rows, n)
    members = members.withColumn("block", F.floor(F.col("position") / batch_size))
    members = members.repartitionByRange(n_blocks, "block").select("position", "member_row")
    task = dict(model_dir=model_dir, sha=sha, k=k, batch_size=batch_size)
    started = time.perf_counter()
    if not plan.rerank:
        slates = members.mapInArrow(
            functools.partial(_plain_partition, **task), SLATE_SCHEMA
        ).persist(StorageLevel.MEMORY_AND_DISK)
        slates.count()
        seconds["ranking"] = time.perf_counter() - started
        report = None
    else:
        lists = members.mapInArrow(
            functools.partial(_lists_partition, **task), LIST_SCHEMA
        ).persist(StorageLevel.MEMORY_AND_DISK)
        lists.count()
        seconds["ranking"] = time.perf_counter() - started
        logger.info("ranked %d members on Spark in %.1f s", n, seconds["ranking"])
        slates, report = assign_on_spark(
            spark,
            lists,
            n_members=n_members,
            capacity=functools.partial(node_capacity, model_dir, sha, n, k),
            k=k,
            floor_slots=plan.floor_slots,
            floor_depth=plan.floor_depth,
            tiebreak=functools.partial(node_tiebreak, model_dir, sha),
            finish_below=finish_below,
        )
        seconds.update({f"assignment/{key}": v for key, v in report.seconds.items()})
    if member_rows is None:
        slates = slates.withColumn("member_row", F.col("position"))
    else:
        slates = slates.join(members, on="position")
    return SparkSlates(
        slates.select("position", "member_row", "slot", "other", "score"),
        n,
        plan,
        report,
        seconds,
    )


def rank_on_spark(
    spark: SparkSession,
    model_dir: str | os.PathLike,
    member_rows: np.ndarray,
    *,
    k: int = 20,
    batch_size: int = 2000,
    finish_below: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`slates_on_spark`, collected to the driver as arrays: for tests and batches small
    enough for one machine. Equal to ``model.rank_batch(member_rows, k, batch_size=batch_size)``.

    Returns
    -------
    ids : (R, k) int32, padded with -1
    scores : (R, k) float32, padded with -inf, best first
    """
    rows = np.atleast_1d(np.asarray(member_rows))
    found = slates_on_spark(
        spark, model_dir, rows, k=k, batch_size=batch_size, finish_below=finish_below
    )
    ids = np.full((len(rows), k), -1, dtype=np.int32)
    scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    if len(rows):
        table = found.slates.toArrow()
        at = (table.column("position").to_numpy(), table.column("slot").to_numpy())
        ids[at] = table.column("other").to_numpy()
        scores[at] = table.column("score").to_numpy()
    return ids, scores
