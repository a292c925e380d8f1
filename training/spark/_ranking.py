"""Distributed batch ranking: blocks of members ranked on the executors with the library's own
batched methods, then one global capacity assignment on the driver (see :mod:`training.spark`)."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from recsys import IntroductionRecommender, ModelFormatError, load_model
from training.spark._arrow import list_array, list_matrix

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import SparkSession

__all__ = ["rank_on_spark"]

logger = logging.getLogger(__name__)

#: Models loaded in this Python worker, by (directory, SHA-256 of its manifest). Spark reuses
#: Python workers across tasks, so each worker reads a model once, not once per task.
_WORKER_MODELS: dict[tuple[str, str], IntroductionRecommender] = {}


def _manifest_sha(model_dir: str) -> str:
    return hashlib.sha256((Path(model_dir) / "manifest.json").read_bytes()).hexdigest()


def _worker_model(model_dir: str, manifest_sha: str) -> IntroductionRecommender:
    key = (model_dir, manifest_sha)
    model = _WORKER_MODELS.get(key)
    if model is None:
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
                list_array(ids),
                list_array(scores),
                list_array(outside),
            ]
            names = ["position", "ids", "scores", "outside"]
        else:
            ids, scores = model.rank(rows[s:e], k)
            columns = [pa.array(position[s:e]), list_array(ids), list_array(scores)]
            names = ["position", "ids", "scores"]
        yield pa.RecordBatch.from_arrays(columns, names=names)


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
    ids = list_matrix(table.column("ids"), n, np.int32)[order]
    scores = list_matrix(table.column("scores"), n, np.float32)[order]
    logger.info(
        "ranked %d members on Spark in %.1f s (%d blocks)",
        n,
        time.perf_counter() - started,
        n_blocks,
    )
    if not lists:
        return ids, scores
    outside = list_matrix(table.column("outside"), n, bool)[order]
    del table
    return model.assign(rows, ids, scores, outside, k)
