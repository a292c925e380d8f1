"""MLflow tracking: one run per job, marked FAILED (never FINISHED) when the job fails."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.config import Config, flatten

__all__ = ["tracked_run", "git_commit", "log_metrics", "log_rerank_setting", "mlflow_metric_name"]

logger = logging.getLogger(__name__)


def git_commit() -> str:
    """The source tree's commit, or ``unknown`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def mlflow_metric_name(name: str) -> str:
    """DESIGN.md names are already MLflow-safe (letters, digits, ``_ - . /``); ``@`` is never
    used.
    """
    if "@" in name:
        raise ValueError(f"metric name {name!r} must not contain '@'")
    return name


@contextlib.contextmanager
def tracked_run(
    config: Config,
    *,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[Any]:
    """Start an MLflow run with the resolved config as params; yields the ``mlflow`` module (or
    None when off).

    The run ends FINISHED only when the block completes; an exception ends it FAILED and
    propagates.
    A run started while another is active (a sweep's or a simulation's parent run), or given
    ``parent_run_id``, is started nested under it; keep both in the same experiment.
    """
    if not config.mlflow.enabled:
        yield None
        return
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    mlflow.set_experiment(config.mlflow.experiment)
    active = mlflow.active_run()
    parent = parent_run_id or (active.info.run_id if active is not None else None)
    run = mlflow.start_run(run_name=run_name, nested=parent is not None, parent_run_id=parent)
    try:
        mlflow.set_tags({"git_commit": git_commit(), **(tags or {})})
        params = {k: ("" if v is None else v) for k, v in flatten(config.to_dict()).items()}
        mlflow.log_params(params)
        yield mlflow
    except BaseException:
        mlflow.end_run(status="FAILED")
        logger.error("MLflow run %s marked FAILED", run.info.run_id)
        raise
    else:
        mlflow.end_run(status="FINISHED")


def log_rerank_setting(mlflow: Any, model: Any) -> None:
    """The re-ranker setting the model ranks with, as params ``rerank.tuned.*`` (the config's
    ``rerank.*`` are only its starting point when tuning is on), and whether that setting met
    every bound on the validation connections, as the tag ``rerank.validation_bounds_met``."""
    if not getattr(model, "rerank", False):
        return
    mlflow.log_params(
        {
            f"rerank.tuned.{name}": ("" if value is None else value)
            for name, value in model.rerank_params_.items()
            if name != "score_scale"
        }
    )
    report = getattr(model, "rerank_report_", {}) or {}
    if report.get("tuned"):
        mlflow.set_tags(
            {"rerank.validation_bounds_met": str(bool(report["all_bounds_met"])).lower()}
        )


def log_metrics(mlflow: Any, metrics: dict[str, float]) -> None:
    """Log the finite metrics (MLflow rejects NaN in some stores; a missing figure is left out)."""
    finite = {
        mlflow_metric_name(k): float(v)
        for k, v in metrics.items()
        if v is not None and math.isfinite(float(v))
    }
    mlflow.log_metrics(finite)
