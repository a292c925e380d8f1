"""The global slate assignment as Spark rounds: capacity, the +1 quota and the least-exposed
places of :func:`recsys.assign_slates`, with no preference list collected to the driver.

**Capacity rounds.** In the library's rounds (:func:`recsys.capacity_rounds`, compiled as
``assign_rounds``) every row still proposing moves one entry down its list per round, whether
its last proposal was accepted, refused or passed over for the +1 quota; so round ``J`` is the
``J``-th entry of every active row. One Spark round is therefore: the entry ``J`` of each row
still active and not over its quota (the place-``J`` rows of the persisted entries, one row per
list entry, joined with the small row state), ranked per recipient by ``(score descending,
row ascending)`` — the kernel's stable sort of the round's proposals, ties to the lower row —
and accepted where the rank is within the
recipient's places left (a candidate with more proposals than places keeps the best; one with
room keeps them all, which the same rule says). Rows and recipients update their counts from
the accepted proposals and the next round starts. The data is partitioned by recipient for the
ranking and by row for the state; nothing is collected but a few counts per round.

**The last rounds in one task.** Rows drop out as their slates fill, and the last rounds move a
few stragglers (rows whose candidates are full look all the way down their list). Once fewer
than ``finish_below`` list entries are left to propose, the rows still active go to one task
that runs the library's compiled rounds on them (:func:`recsys.capacity_rounds`): their lists
from round ``J`` on, the recipients' places left, and a prefix that puts each row in the state
it reached (its accepted proposals as proposals to a recipient with room for all, then refusals
by one with no room, so that every row is at the same round when its own entries start).

**Least-exposed places** (``floor_slots > 0``): :func:`recsys.assign_slates` fills them one
row at a time in row order, each pick raising the exposure the next row sees, so the result
depends on every earlier row's pick: a sequential pass by definition. It runs in one task over
every row's list and head (:func:`recsys.assign_slates` with ``head``, the library's own code),
on an executor, never the driver. This is the one step whose time does not fall as nodes are
added (see the README's sizing).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys import PreferenceLists, assign_slates, capacity_rounds

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["AssignmentReport", "assign_on_spark", "monotone_on_spark"]

logger = logging.getLogger(__name__)

#: Columns of the preference lists the assignment reads.
LIST_COLUMNS = ("position", "ids", "scores", "outside", "required", "max_inside", "length")
SLATE_SCHEMA = "position long, slot int, other int, score float"
#: The Spark setting that overrides ``finish_below``, and its default.
FINISH_BELOW_CONF = "spark.plusone.assign.finishBelow"
FINISH_BELOW = 2_000_000


@dataclass
class AssignmentReport:
    """What the assignment did: rounds on Spark, rows finished in one task, seconds per step."""

    spark_rounds: int = 0
    finished_rows: int = 0
    finished_entries: int = 0
    finish_rounds: int = 0
    floor_rows: int = 0
    active_per_round: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "spark_rounds": self.spark_rounds,
            "finished_rows": self.finished_rows,
            "finished_entries": self.finished_entries,
            "finish_rounds": self.finish_rounds,
            "floor_rows": self.floor_rows,
            "active_per_round": list(self.active_per_round),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def _checkpoint(frame: DataFrame) -> DataFrame:
    """``frame`` materialised, with its lineage and its size estimate cut.

    Each round builds on the last: without the cut a plan of a hundred rounds is re-planned
    (and recomputed) from the first. ``localCheckpoint`` alone cuts the lineage but keeps the
    plan's size estimate, and Spark estimates a join as the product of its sides: the state's
    estimate squared each round and the planner ran out of memory by round 10 (measured). So
    the checkpointed rows are handed to a fresh DataFrame through the JVM (rows, no Python),
    which Spark sizes as unknown; adaptive execution still sees the real sizes at run time.
    """
    from pyspark.sql import DataFrame as _DataFrame

    done = frame.localCheckpoint(eager=True)
    session = done.sparkSession
    fresh = session._jsparkSession.createDataFrame(done._jdf.rdd(), done._jdf.schema())
    return _DataFrame(fresh, session)


def assign_on_spark(
    spark: SparkSession,
    lists: DataFrame,
    *,
    n_members: int,
    capacity: Callable[[], np.ndarray],
    k: int,
    floor_slots: int = 0,
    floor_depth: int | None = None,
    tiebreak: Callable[[], np.ndarray] | None = None,
    finish_below: int | None = None,
    partitions: int | None = None,
) -> tuple[DataFrame, AssignmentReport]:
    """Slates of ``k`` for every row of ``lists``, assigned together on Spark; equal to
    :func:`recsys.assign_slates` on the same lists (same members, same order, same scores).

    Parameters
    ----------
    spark : SparkSession
    lists : DataFrame
        One row per slate: ``position`` (long, the row's place in the batch: ties go to the
        lower), ``ids`` (array<int>, -1 padded), ``scores`` (array<float>), ``outside``
        (array<boolean>), ``required`` (boolean, keeps the +1 balance), ``max_inside`` (int,
        :func:`recsys.plus_one_quota` of the row) and ``length`` (int, entries before the first
        -1). Persist it first: every round reads it.
    n_members : int
        Members a candidate can be (the capacity array's length).
    capacity : callable
        Returns the (n_members,) int capacity of every member; called on executors only (a
        module-level function or a ``functools.partial`` of one: Spark pickles it).
    k, floor_slots, floor_depth :
        As :func:`recsys.assign_slates` (``floor_depth`` in entries, default ``2k``).
    tiebreak : callable, optional
        Returns the (n_members,) ``tiebreak`` of :func:`recsys.assign_slates` (the model's
        :meth:`~recsys.IntroductionRecommender.floor_tiebreak`); called in the one task that
        assigns the least-exposed places.
    finish_below : int, optional
        When fewer list entries than this are left to propose, the remaining rounds run in one
        task (0: every round on Spark). Default: the session's
        ``spark.plusone.assign.finishBelow``, else 2,000,000 (about 20 MB of lists: seconds in
        one task, where each Spark round costs a few seconds of scheduling).
    partitions : int, optional
        Partitions of the per-round data (default: ``spark.sql.shuffle.partitions``).

    Returns
    -------
    slates : DataFrame ``position long, slot int, other int, score float``
        One row per filled place (``slot`` from 0), scores non-increasing along each slate.
    report : AssignmentReport
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    if not 0 <= floor_slots < k:
        raise ValueError(f"floor_slots must be between 0 and k - 1 ({k - 1}), got {floor_slots}")
    depth = 2 * k if floor_depth is None else int(floor_depth)
    if finish_below is None:
        finish_below = int(spark.conf.get(FINISH_BELOW_CONF, str(FINISH_BELOW)))
    report = AssignmentReport()
    parts = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    head_k = k - floor_slots

    started = time.perf_counter()
    remaining = _checkpoint(
        spark.range(n_members, numPartitions=max(1, min(parts, -(-n_members // 250_000))))
        .mapInArrow(
            functools.partial(_capacity_partition, capacity=capacity), "cand int, left long"
        )
        .repartition(parts, "cand")
    )
    state = _checkpoint(
        lists.where(F.col("length") > 0)
        .select(
            "position",
            F.lit(0).alias("filled"),
            F.lit(0).alias("n_inside"),
            "max_inside",
            "length",
        )
        .repartition(parts, "position")
    )
    report.seconds["capacity_and_state"] = time.perf_counter() - started
    width = int(lists.select(F.max("length")).first()[0] or 0)
    # every list entry as a row, partitioned by row and sorted by place within each partition:
    # round J reads the cached batches that hold place J (the in-memory scan skips the others
    # by their min/max statistics), so a round costs the active rows, not every whole list
    entries = (
        lists.select(
            "position",
            F.posexplode(F.arrays_zip("ids", "scores", "outside")).alias("J", "entry"),
        )
        .select(
            "position",
            F.col("J").cast("int").alias("J"),
            F.col("entry.ids").alias("cand"),
            F.col("entry.scores").alias("score"),
            F.col("entry.outside").alias("outside"),
        )
        .where(F.col("cand") >= 0)
        .repartition(parts, "position")
        .sortWithinPartitions("J", "position")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    by_recipient = Window.partitionBy("cand").orderBy(
        F.isnan("score").asc(), F.col("score").desc(), F.col("position").asc()
    )
    accepted: list[DataFrame] = []
    started = time.perf_counter()
    J = 0
    while J < width:
        active, left = _active(state, J)
        report.active_per_round.append(active)
        if active == 0 or left < finish_below:
            break
        proposals = (
            state.join(entries.where(F.col("J") == J), on="position")
            .select("position", "filled", "cand", "score", "outside", "n_inside", "max_inside")
            .where(F.col("outside") | (F.col("n_inside") < F.col("max_inside")))
        )
        taken = _checkpoint(
            proposals.join(remaining, on="cand")
            .withColumn("rank", F.row_number().over(by_recipient))
            .where(F.col("rank") <= F.col("left"))
            .select(
                "position",
                F.col("filled").alias("slot"),
                F.col("cand").alias("other"),
                "score",
                "outside",
            )
        )
        accepted.append(taken.select("position", "slot", "other", "score"))
        per_recipient = taken.groupBy(F.col("other").alias("cand")).agg(F.count("*").alias("n"))
        remaining = _checkpoint(
            remaining.join(per_recipient, on="cand", how="left").select(
                "cand", (F.col("left") - F.coalesce(F.col("n"), F.lit(0))).alias("left")
            )
        )
        per_row = taken.select(
            "position",
            F.lit(1).alias("got"),
            (~F.col("outside")).cast("int").alias("got_inside"),
        )
        state = _checkpoint(
            state.join(per_row, on="position", how="left")
            .select(
                "position",
                (F.col("filled") + F.coalesce(F.col("got"), F.lit(0))).alias("filled"),
                (F.col("n_inside") + F.coalesce(F.col("got_inside"), F.lit(0))).alias("n_inside"),
                "max_inside",
                "length",
            )
            .where((F.col("filled") < head_k) & (F.col("length") > J + 1))
        )
        J += 1
    entries.unpersist()
    report.spark_rounds = J
    report.seconds["spark_rounds"] = time.perf_counter() - started

    started = time.perf_counter()
    if J < width and report.active_per_round and report.active_per_round[-1] > 0:
        stragglers = (
            state.join(lists.select("position", "ids", "scores", "outside"), on="position")
            .select(
                "position",
                "filled",
                "n_inside",
                "max_inside",
                F.slice("ids", J + 1, width).alias("ids"),
                F.slice("scores", J + 1, width).alias("scores"),
                F.slice("outside", J + 1, width).alias("outside"),
            )
            .withColumn("cand", F.explode(F.filter(F.array_distinct("ids"), lambda c: c >= 0)))
            .join(remaining, on="cand", how="left")
            .groupBy("position")
            .agg(
                F.first("filled").alias("filled"),
                F.first("n_inside").alias("n_inside"),
                F.first("max_inside").alias("max_inside"),
                F.first("ids").alias("ids"),
                F.first("scores").alias("scores"),
                F.first("outside").alias("outside"),
                F.map_from_arrays(F.collect_list("cand"), F.collect_list("left")).alias("left"),
            )
        )
        finished = _checkpoint(
            stragglers.repartition(1).mapInArrow(
                functools.partial(_finish_partition, k=head_k), SLATE_SCHEMA
            )
        )
        report.finished_rows, report.finished_entries = _active(state, J)
        report.finish_rounds = width - J
        accepted.append(finished)
    report.seconds["finish_in_one_task"] = time.perf_counter() - started

    head = (
        functools.reduce(lambda a, b: a.unionByName(b), accepted)
        if accepted
        else spark.createDataFrame([], SLATE_SCHEMA)
    )
    if not floor_slots:
        return monotone_on_spark(head), report

    started = time.perf_counter()
    heads = head.groupBy("position").agg(
        F.array_sort(F.collect_list(F.struct("slot", "other", "score"))).alias("head")
    )
    everything = lists.select(*LIST_COLUMNS).join(heads, on="position", how="left")
    slates = _checkpoint(
        everything.repartition(1)
        .sortWithinPartitions("position")
        .mapInArrow(
            functools.partial(
                _floor_partition,
                k=k,
                floor_slots=floor_slots,
                depth=depth,
                capacity=capacity,
                tiebreak=tiebreak,
            ),
            SLATE_SCHEMA,
        )
    )
    report.floor_rows = int(lists.count())
    report.seconds["least_exposed_places_in_one_task"] = time.perf_counter() - started
    # persisted for the caller: the one task is not run twice
    return slates.persist(StorageLevel.MEMORY_AND_DISK), report


def _active(state: DataFrame, J: int) -> tuple[int, int]:
    """Rows still proposing at round ``J`` and the list entries they have left, in one job."""
    from pyspark.sql import functions as F

    row = state.agg(F.count("*"), F.sum(F.col("length") - J)).first()
    return int(row[0]), int(row[1] or 0)


def monotone_on_spark(slates: DataFrame) -> DataFrame:
    """Scores made non-increasing along each slate (:func:`recsys.monotone`): the running
    minimum of the finite scores by slot; a score that is not finite becomes -inf."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    finite = ~(F.isnan("score") | F.col("score").isin(float("inf"), float("-inf")))
    running = (
        Window.partitionBy("position")
        .orderBy("slot")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return slates.select(
        "position",
        "slot",
        "other",
        F.when(
            finite,
            F.min(F.when(finite, F.col("score")).otherwise(F.lit(float("inf")))).over(running),
        )
        .otherwise(F.lit(float("-inf")))
        .cast("float")
        .alias("score"),
    )


def _capacity_partition(
    batches: Iterator[pa.RecordBatch], *, capacity: Callable[[], np.ndarray]
) -> Iterator[pa.RecordBatch]:
    """``cand, left``: every member's capacity, for the members of this partition."""
    cap = None
    for batch in batches:
        if not batch.num_rows:
            continue
        if cap is None:
            cap = np.asarray(capacity(), dtype=np.int64)
        members = batch.column(0).to_numpy()
        yield pa.RecordBatch.from_arrays(
            [pa.array(members.astype(np.int32)), pa.array(cap[members])], names=["cand", "left"]
        )


def _ragged(column: pa.ChunkedArray | pa.Array, width: int, fill, dtype) -> np.ndarray:
    """Arrow list column of lists of at most ``width`` → (n, width) array padded with ``fill``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    out = np.full((n, width), fill, dtype=dtype)
    if n == 0 or width == 0:
        return out
    offsets = column.offsets.to_numpy()
    values = column.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    lengths = np.diff(offsets)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, cols] = values
    return out


def _longest(column: pa.ChunkedArray) -> int:
    lengths = pc.list_value_length(column)
    return int(pc.max(lengths).as_py() or 0) if len(column) else 0


def _finish_partition(batches: Iterator[pa.RecordBatch], *, k: int) -> Iterator[pa.RecordBatch]:
    """The remaining rounds of the rows still proposing, in one task, with the library's
    compiled rounds (see the module docstring for the prefix that restores each row's state)."""
    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    table = pa.Table.from_batches(parts).sort_by("position")
    position = table.column("position").to_numpy()
    filled = table.column("filled").to_numpy().astype(np.int64)
    n_inside = table.column("n_inside").to_numpy().astype(np.int64)
    max_inside = table.column("max_inside").to_numpy().astype(np.int64)
    rest = _longest(table.column("ids"))
    ids = _ragged(table.column("ids"), rest, -1, np.int64)
    scores = _ragged(table.column("scores"), rest, -np.inf, np.float32)
    outside = _ragged(table.column("outside"), rest, True, bool)
    left = table.column("left").combine_chunks()
    keys = left.keys.to_numpy(zero_copy_only=False).astype(np.int64)
    vals = left.items.to_numpy(zero_copy_only=False)
    members, local = np.unique(keys, return_inverse=True)
    cap_local = np.zeros(len(members) + 2, dtype=np.int64)
    cap_local[local] = np.where(np.isnan(vals.astype(np.float64)), 0, vals).astype(np.int64)
    sink, full = len(members), len(members) + 1
    cap_local[sink] = int(filled.sum()) + 1  # room for every replayed acceptance
    cap_local[full] = 0  # refuses every replayed non-acceptance
    where = np.searchsorted(members, np.maximum(ids, 0))
    real = np.where(ids >= 0, where, -1)
    prefix = int(filled.max()) if len(filled) else 0
    n = len(position)
    pre_ids = np.full((n, prefix), full, dtype=np.int64)
    pre_out = np.ones((n, prefix), dtype=bool)
    col = np.arange(prefix)
    pre_ids[col[None, :] < filled[:, None]] = sink
    pre_out[col[None, :] < n_inside[:, None]] = False  # the accepted inside proposals first
    got, got_scores = capacity_rounds(
        PreferenceLists(
            np.hstack([pre_ids, real]).astype(np.int32),
            np.hstack([np.zeros((n, prefix), np.float32), scores]),
            np.hstack([pre_out, outside]),
        ),
        k=k,
        capacity=cap_local,
        max_inside=max_inside,
    )
    slot = np.arange(k)[None, :].repeat(n, axis=0)
    keep = (got >= 0) & (slot >= filled[:, None])
    r, c = np.nonzero(keep)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(position[r].astype(np.int64)),
            pa.array(c.astype(np.int32)),
            pa.array(members[got[r, c]].astype(np.int32)),
            pa.array(got_scores[r, c].astype(np.float32)),
        ],
        names=["position", "slot", "other", "score"],
    )


def _floor_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    k: int,
    floor_slots: int,
    depth: int,
    capacity: Callable[[], np.ndarray],
    tiebreak: Callable[[], np.ndarray] | None,
) -> Iterator[pa.RecordBatch]:
    """Every row's slate with its least-exposed places, in one task: the library's
    :func:`recsys.assign_slates` given the heads the rounds assigned."""
    parts = [b for b in batches if b.num_rows]
    if not parts:
        return
    table = pa.Table.from_batches(parts).sort_by("position")
    n = len(table)
    position = table.column("position").to_numpy()
    width = _longest(table.column("ids"))
    ids = _ragged(table.column("ids"), width, -1, np.int32)
    scores = _ragged(table.column("scores"), width, -np.inf, np.float32)
    outside = _ragged(table.column("outside"), width, False, bool)
    required = table.column("required").to_numpy(zero_copy_only=False).astype(bool)
    head_k = k - floor_slots
    head_ids = np.full((n, head_k), -1, dtype=np.int32)
    head_scores = np.full((n, head_k), -np.inf, dtype=np.float32)
    heads = table.column("head").combine_chunks()
    if heads.null_count < n:
        lengths = heads.value_lengths().fill_null(0).to_numpy()
        flat = heads.flatten()
        rows = np.repeat(np.arange(n), lengths)
        slots = flat.field("slot").to_numpy().astype(np.int64)
        head_ids[rows, slots] = flat.field("other").to_numpy()
        head_scores[rows, slots] = flat.field("score").to_numpy()
    got, got_scores = assign_slates(
        PreferenceLists(ids, scores, outside),
        k=k,
        capacity=np.asarray(capacity(), dtype=np.int64),
        required=required,
        floor_slots=floor_slots,
        floor_depth=depth,
        tiebreak=None if tiebreak is None else tiebreak(),
        head=(head_ids, head_scores),
    )
    r, c = np.nonzero(got >= 0)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(position[r].astype(np.int64)),
            pa.array(c.astype(np.int32)),
            pa.array(got[r, c].astype(np.int32)),
            pa.array(got_scores[r, c].astype(np.float32)),
        ],
        names=["position", "slot", "other", "score"],
    )
