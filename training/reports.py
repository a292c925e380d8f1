"""What a training run logs to MLflow beyond its metrics: plots, per-group tables, the model.

``log_run_reports`` is called by ``training.job.train_job`` inside the active run, after the
metrics, ``metrics.json``, ``config.yaml`` and the model directory have been logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["log_run_reports"]


def log_run_reports(mlflow: Any, *, model: Any, train: Any, evaluation: Any, config: Any, output_dir: Path) -> None:
    """Log the run's plots and the MLflow model (filled in by the evaluation work)."""
    return None
