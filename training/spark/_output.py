"""The batch output of the Spark engine, written by the executors: a directory of Parquet files
with the DESIGN.md columns, published by one rename when complete."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from training.spark._ranking import SparkSlates
from training.spark._worker import node_model_dir

__all__ = ["OUTPUT_SCHEMA", "write_slates_on_spark"]

OUTPUT_SCHEMA = "member_id string, rank int, other_id string, score float"

#: The model's member ids as one Arrow array, per Python worker (made once, then taken from).
_NAMES: dict[tuple[str, str], pa.Array] = {}


def _member_names(model_dir: str, sha: str) -> pa.Array:
    """The member ids, read from the node's verified copy of the member table (a worker that
    writes need not load the model)."""
    key = (model_dir, sha)
    if key not in _NAMES:
        _NAMES.clear()
        table = pq.read_table(node_model_dir(model_dir, sha) / "members.parquet")
        _NAMES[key] = table.column("member_id").cast(pa.string()).combine_chunks()
    return _NAMES[key]


def _named_partition(
    batches: Iterator[pa.RecordBatch], *, model_dir: str, sha: str
) -> Iterator[pa.RecordBatch]:
    """``position, member_row, slot, other, score`` → ``member_id, rank, other_id, score``."""
    names = None
    for batch in batches:
        if not batch.num_rows:
            continue
        names = names if names is not None else _member_names(model_dir, sha)
        yield pa.RecordBatch.from_arrays(
            [
                names.take(batch.column("member_row")),
                pc.add(batch.column("slot"), 1).cast(pa.int32()),
                names.take(batch.column("other")),
                batch.column("score"),
            ],
            names=["member_id", "rank", "other_id", "score"],
        )


def write_slates_on_spark(
    found: SparkSlates,
    model_dir: str,
    sha: str,
    output: str | os.PathLike,
    *,
    k: int,
    rows_per_file: int = 2_000_000,
) -> int:
    """Write the slates as ``output/part-*.parquet`` from the executors, in the local engine's
    order (members as ranked, then rank: the part files in name order), with the columns
    ``member_id, rank, other_id, score``; returns the number of rows.

    The files go to a temporary sibling directory, renamed to ``output`` once every task has
    written (an existing ``output`` is replaced the same way), so a failed job leaves no half
    output. ``output`` must be on storage the driver and every executor see (a shared mount).
    """
    target = Path(output).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    files = max(1, -(-found.n_slates * k // rows_per_file))
    named = (
        found.slates.repartitionByRange(files, "position")
        .sortWithinPartitions("position", "slot")
        .mapInArrow(
            functools.partial(_named_partition, model_dir=model_dir, sha=sha), OUTPUT_SCHEMA
        )
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        written = tmp / "parts"  # Spark creates it; the executors write into it
        named.write.parquet(str(written))
        rows = named.sparkSession.read.parquet(str(written)).count()
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(written, target)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(written, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return int(rows)
