"""The config-driven jobs: train (fit, evaluate, save, track) and evaluate a saved model."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys import (
    SOURCE_BITS,
    IntroductionRecommender,
    Network,
    Slates,
    atomic_write,
    evaluate_slates,
    evaluation_members,
    evaluation_partitions,
    heldout_matrix,
    holdout_split,
    load_model,
    pool_recall,
    write_model_dir,
)
from training.config import Config, config_to_yaml
from training.data import check_data_path, check_trainable, dataset_name, load_data
from training.factory import fit_recommender
from training.output import JobOutput
from training.privacy import publishable_tables
from training.reports import log_run_reports
from training.tracking import log_metrics, log_rerank_setting, tracked_run

__all__ = ["Evaluation", "TrainResult", "train_job", "evaluate_saved_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    model_dir: Path
    metrics: dict[str, float]
    run_id: str | None


def _progress_bar(total: int, desc: str):
    return tqdm(
        total=total, desc=desc, unit="members", disable=not sys.stderr.isatty(), leave=False
    )


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation produced: flat metrics, per-group tables (aggregates only) and the
    slates.
    """

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    slates: Slates


def evaluate_model(
    model: IntroductionRecommender,
    train: Network,
    heldout: np.ndarray,
    config: Config,
    *,
    sensitive: pd.DataFrame | None = None,
) -> Evaluation:
    """Rank the evaluation members with ``model`` and compute every metric."""
    rows = evaluation_members(
        train, max_members=config.evaluation.max_members, seed=config.evaluation.seed
    )
    k = config.evaluation.k
    if len(rows) < train.n_members:
        logger.info(
            "evaluating a seeded sample of %d of %d members (evaluation.max_members)",
            len(rows),
            train.n_members,
        )
    with _progress_bar(len(rows), "ranking") as bar:
        ids, scores = model.rank_batch(rows, k, progress=bar.update)
    slates = Slates(rows, ids, scores)
    if sensitive is not None:
        train = _with_sensitive(train, sensitive)
    metrics, tables = evaluate_slates(
        slates,
        train=train,
        heldout=heldout,
        communities=model.communities_,
        k=k,
        min_group_size=config.data.min_group_size,
        atkinson_epsilon=config.evaluation.atkinson_epsilon,
        plus_one_rows=model.reranker_.required_rows(np.arange(train.n_members)),
        # partitions the model never saw: bridging judged under any reasonable boundary
        partitions=(
            evaluation_partitions(train.adjacency, random_state=config.evaluation.seed)
            if config.evaluation.holdout_partitions
            else None
        ),
        ensemble=model.state_.community_ensemble,
    )
    # stated in the run: how many members were ranked, of how many
    metrics["evaluation/ranked_members"] = float(len(rows))
    metrics["evaluation/ranked_share"] = len(rows) / max(train.n_members, 1)
    if len(heldout):
        metrics.update(_pool_recall(model, train, heldout, rows, seed=config.evaluation.seed))
    return Evaluation(metrics=metrics, tables=tables, slates=slates)


def _pool_recall(
    model: IntroductionRecommender,
    train: Network,
    heldout: np.ndarray,
    rows: np.ndarray,
    *,
    seed: int,
    sample: int = 5000,
) -> dict[str, float]:
    """Pool recall (the re-ranker's ceiling) on a seeded sample of the evaluated members."""
    relevant_rows = rows[np.diff(heldout_matrix(heldout, train.n_members)[rows].indptr) > 0]
    if len(relevant_rows) > sample:
        relevant_rows = np.sort(
            np.random.default_rng(seed).choice(relevant_rows, sample, replace=False)
        )
    ids, bits = model.pool(relevant_rows)
    relevant = heldout_matrix(heldout, train.n_members)[relevant_rows]
    return pool_recall(
        ids, bits, relevant, sources={k: v for k, v in SOURCE_BITS.items() if k in model.sources_}
    )


def _with_sensitive(network: Network, sensitive: pd.DataFrame) -> Network:
    return replace(network, sensitive=sensitive.reset_index(drop=True))


def train_job(
    config: Config, *, output_dir: str | os.PathLike, on_stage: Callable[[str], None] | None = None
) -> TrainResult:
    """Load, split, fit, evaluate, save and track: what ``recsys train`` does.

    Everything is written to a staging directory inside ``output_dir`` and published in one step
    at the very end, after the MLflow logging (:class:`training.output.JobOutput`): a job that
    fails or is killed leaves the previous output as it was, whole, and its MLflow run is
    marked FAILED (by this process, or by the next job that finds it dead). The output is
    checked, and locked against a second job, before any data is read. Each stage is logged
    (``loading data``, ``holding out connections``, ``fitting: ...``, ``evaluating``,
    ``saving``, ``logging to MLflow``, ``publishing``).
    """
    stage = on_stage or (lambda name: logger.info("%s", name))
    output = JobOutput(output_dir)
    output.check()  # a file in the way, or data that is not there: before anything starts
    check_data_path(config)
    started = time.perf_counter()
    tags = {
        "dataset": dataset_name(config),
        "policy": "rerank" if config.rerank.enabled else "unconstrained",
    }
    with (
        output.staging() as staging,
        tracked_run(config, run_name=tags["dataset"], tags=tags) as mlflow,
    ):
        stage("loading data")
        network = load_data(config)
        logger.info(
            "%d members, %d connections, %d interests",
            network.n_members,
            len(network.connections),
            network.n_interests,
        )
        check_trainable(network)
        stage("holding out connections")
        train, heldout = holdout_split(
            network, fraction=config.split.holdout_fraction, seed=config.split.seed
        )
        model = fit_recommender(config, train, progress=lambda name: stage(f"fitting: {name}"))
        stage("evaluating")
        evaluation = evaluate_model(model, train, heldout, config)
        metrics, tables = evaluation.metrics, evaluation.tables
        metrics["train_seconds"] = time.perf_counter() - started
        stage("saving")
        model_dir = write_model_dir(
            model,
            staging / "model",
            config=config.to_dict(),
            metadata={"dataset": tags["dataset"], "heldout_connections": int(len(heldout))},
        )
        atomic_write(
            staging / "metrics.json", json.dumps(_json_metrics(metrics), indent=2, sort_keys=True)
        )
        atomic_write(staging / "config.yaml", config_to_yaml(config))
        group_dir = staging / "groups"
        for name, table in publishable_tables(tables).items():
            atomic_write(group_dir / (name.replace("/", "__") + ".csv"), table.to_csv(index=False))
        run_id = None
        if mlflow is not None:
            stage("logging to MLflow")
            log_metrics(mlflow, metrics)
            log_rerank_setting(mlflow, model)
            mlflow.log_artifact(str(staging / "metrics.json"))
            mlflow.log_artifact(str(staging / "config.yaml"))
            if group_dir.exists():
                mlflow.log_artifacts(str(group_dir), artifact_path="groups")
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
            log_run_reports(
                mlflow,
                model=model,
                train=train,
                evaluation=evaluation,
                config=config,
                output_dir=staging,
                heldout=heldout,
            )
            run_id = mlflow.active_run().info.run_id
        stage("publishing")
        output.publish()
    return TrainResult(
        output_dir=output.path, model_dir=output.path / "model", metrics=metrics, run_id=run_id
    )


def _json_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}


def evaluate_saved_model(
    model_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None
) -> dict[str, float]:
    """Metrics of a saved model on the connections its training graph does not have.

    The data is ``data_dir``, or else the data named in the model's own config (re-generated for
    the synthetic network). With the model's own data and split this reproduces the held-out
    evaluation of ``recsys train``; with newer data it scores the connections made since.
    """
    model = load_model(model_dir)
    config = Config.from_dict(
        model.manifest_.get("config") or {}, source=f"{model_dir}/manifest.json"
    )
    if data_dir is not None:
        config = Config.from_dict(
            {**config.to_dict(), "data": {**config.to_dict()["data"], "path": str(data_dir)}}
        )
    network = load_data(config)
    rows = network.rows_of(model.network_.member_ids)
    if (rows < 0).any():
        missing = model.network_.member_ids[rows < 0][0]
        raise ValueError(f"member {missing!r} of the model is not in the evaluation data")
    # connections of the data between members the model knows, that its training graph lacks
    model_rows = model.network_.rows_of(network.member_ids)
    edges = model_rows[network.connections]
    edges = edges[(edges >= 0).all(axis=1)]
    edges = np.sort(edges, axis=1)
    adj = model.network_.adjacency
    known = (
        np.asarray(adj[edges[:, 0], edges[:, 1]]).ravel() > 0 if len(edges) else np.zeros(0, bool)
    )
    heldout = edges[~known].astype(np.int32)
    sensitive = network.sensitive.iloc[rows].reset_index(drop=True)
    return evaluate_model(model, model.network_, heldout, config, sensitive=sensitive).metrics
