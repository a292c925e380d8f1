"""The batch job of ``recsys rank --engine spark``: rank on Spark, write the output, and
optionally measure it on Spark and log the figures as one MLflow run."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys import IntroductionRecommender, generate_tables
from training.batch import slates_frame, write_slates_file
from training.config import Config
from training.data import dataset_name, sensitive_attributes
from training.spark._metrics import (
    member_attributes_on_spark,
    model_members_on_spark,
    neighbours_on_spark,
    slate_metrics_on_spark,
)
from training.spark._ranking import rank_on_spark
from training.spark._session import spark_session
from training.tracking import log_metrics, tracked_run

__all__ = ["SparkBatchResult", "spark_batch_job"]


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
