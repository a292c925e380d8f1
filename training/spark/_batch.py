"""The batch job of ``recsys rank --engine spark``: rank and assign on Spark, have the executors
write the output, and optionally measure it on Spark and log the figures as one MLflow run."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys import generate_tables, read_model_manifest
from training.config import Config
from training.data import dataset_name, sensitive_attributes
from training.spark._metrics import (
    member_attributes_on_spark,
    members_from_workers,
    neighbours_from_workers,
    slate_metrics_on_spark,
)
from training.spark._output import write_slates_on_spark
from training.spark._ranking import slates_on_spark
from training.spark._session import spark_session
from training.spark._worker import manifest_sha
from training.tracking import log_metrics, tracked_run

__all__ = ["SparkBatchResult", "spark_batch_job"]


@dataclass(frozen=True)
class SparkBatchResult:
    rows_written: int
    members: int
    seconds: float
    metrics: dict[str, float] | None
    run_id: str | None
    #: Seconds per stage (plan, ranking, assignment steps, writing, metrics).
    stages: dict[str, float] = field(default_factory=dict)
    #: What the distributed assignment did (:class:`training.spark._assign.AssignmentReport`).
    assignment: dict | None = None


def spark_batch_job(
    model_dir: str | os.PathLike,
    member_rows: np.ndarray | None,
    *,
    k: int,
    output: str | os.PathLike,
    master: str | None = None,
    metrics: bool = False,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 2000,
    finish_below: int | None = None,
    conf: dict[str, str] | None = None,
) -> SparkBatchResult:
    """Rank ``member_rows`` (``None``: every member) on Spark and have the executors write
    ``output``, a directory of Parquet files (DESIGN.md columns, published atomically).

    The driver never loads the model: it reads the manifest, and the executors rank, assign
    and write. With ``metrics`` the reach and equity figures of the written output are computed
    on Spark and logged as one MLflow run (the model's config as params; tags ``engine=spark``,
    ``job=batch_ranking``), FAILED if any step fails. Sensitive attributes come from the
    member table of ``data_dir``, else of the data the model's config names.
    """
    model_dir = str(Path(model_dir).resolve())
    manifest = read_model_manifest(model_dir)
    sha = manifest_sha(model_dir)
    config = Config.from_dict(manifest.get("config") or {}, source=f"{model_dir}/manifest.json")
    tags = {"dataset": dataset_name(config), "engine": "spark", "job": "batch_ranking"}
    with spark_session(master, app_name="plusone-rank", conf=conf) as spark:
        run = (
            tracked_run(config, run_name=f"{tags['dataset']}-batch-spark", tags=tags)
            if metrics
            else contextlib.nullcontext()
        )
        with run as mlflow:
            started = time.perf_counter()
            found = slates_on_spark(
                spark,
                model_dir,
                member_rows,
                k=k,
                batch_size=batch_size,
                finish_below=finish_below,
            )
            stages = dict(found.seconds)
            t = time.perf_counter()
            written = write_slates_on_spark(found, model_dir, sha, output, k=k)
            stages["write"] = time.perf_counter() - t
            seconds = time.perf_counter() - started
            found_metrics = None
            if metrics:
                t = time.perf_counter()
                found_metrics, tables = _output_metrics(
                    spark,
                    model_dir,
                    sha,
                    int(manifest["n_members"]),
                    member_rows,
                    output,
                    config=config,
                    data_dir=data_dir,
                    attributes=sensitive_attributes(config),
                )
                stages["metrics"] = time.perf_counter() - t
                found_metrics.update(
                    {
                        "batch/members": float(found.n_slates),
                        "batch/ranking_seconds": seconds,
                        "batch/members_per_second": found.n_slates / max(seconds, 1e-9),
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
                    log_metrics(mlflow, found_metrics)
                    for name, table in tables.items():
                        mlflow.log_text(
                            table.to_csv(index=False), f"groups/{name.replace('/', '__')}.csv"
                        )
            run_id = mlflow.active_run().info.run_id if mlflow is not None else None
    return SparkBatchResult(
        rows_written=written,
        members=found.n_slates,
        seconds=seconds,
        metrics=found_metrics,
        run_id=run_id,
        stages={name: round(v, 2) for name, v in stages.items()},
        assignment=found.assignment.to_dict() if found.assignment is not None else None,
    )


def _output_metrics(
    spark, model_dir, sha, n_members, member_rows, output, *, config, data_dir, attributes
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Metrics of the written batch output, read back with Spark; the member tables are made by
    the executors from their copy of the model."""
    slates = spark.read.parquet(str(Path(output).resolve()))
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
    members = members_from_workers(spark, model_dir, sha, n_members, labels).cache()
    try:
        if member_rows is None or len(np.unique(member_rows)) == n_members:  # every member
            ranked = members
        else:
            ranked = spark.createDataFrame(
                pa.table({"row": np.asarray(member_rows, dtype=np.int64)})
            ).join(members, on="row")
        return slate_metrics_on_spark(
            slates,
            members,
            neighbours=neighbours_from_workers(spark, model_dir, sha, n_members),
            ranked=ranked.select("member_id"),
            sensitive_attributes=attributes,
            min_group_size=config.data.min_group_size,
            atkinson_epsilon=config.evaluation.atkinson_epsilon,
        )
    finally:
        members.unpersist()
