"""MLflow tracking: one run per job, marked FAILED (never FINISHED) when the job fails.

A job killed outright (SIGKILL, out of memory, a lost machine) cannot end its run, which would
stay RUNNING for ever. Every run is tagged with the host, process id and process start time of
its job, and each new run first marks FAILED the RUNNING runs of its experiment whose job is
gone from this host. Two first runs on a fresh SQLite store would both create its tables (one
fails with ``duplicate column name``); the store is opened under a lock beside the database.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.config import Config, flatten

__all__ = [
    "fail_dead_runs",
    "git_commit",
    "job_tags",
    "log_metrics",
    "log_rerank_setting",
    "mlflow_metric_name",
    "tracked_run",
]

#: Tags naming the process that runs a job (see the module docstring).
HOST_TAG, PID_TAG, STARTED_TAG = "job.host", "job.pid", "job.process_started"

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
    with _store_lock(config.mlflow.tracking_uri):
        experiment = mlflow.set_experiment(config.mlflow.experiment)
    fail_dead_runs(mlflow, experiment.experiment_id)
    active = mlflow.active_run()
    parent = parent_run_id or (active.info.run_id if active is not None else None)
    run = mlflow.start_run(run_name=run_name, nested=parent is not None, parent_run_id=parent)
    try:
        mlflow.set_tags({"git_commit": git_commit(), **job_tags(), **(tags or {})})
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


def _process_started(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), to tell a process from
    a later one given the same pid; None where /proc has no answer."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22 of stat(5), counted after "pid (comm)"
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or _process_started(pid) in (None, started)


def job_tags() -> dict[str, str]:
    """This process as run tags: host, pid and start time."""
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        STARTED_TAG: _process_started(os.getpid()) or "",
    }


def fail_dead_runs(mlflow: Any, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs of ``experiment_id`` whose job process on this host is
    gone; returns their ids. Runs of other hosts, and untagged ones, are left alone."""
    from mlflow import MlflowClient

    host = socket.gethostname()
    client = MlflowClient()
    try:
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
            max_results=200,
        )
    except Exception as err:  # a store that cannot filter so: nothing to clean, say so
        logger.debug("could not look for dead runs: %s", err)
        return []
    failed = []
    for run in runs:
        tags = run.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid, tags.get(STARTED_TAG) or None):
            continue
        client.set_terminated(run.info.run_id, status="FAILED", end_time=int(time.time() * 1000))
        logger.warning(
            "MLflow run %s was left RUNNING by job %d, which is gone: marked FAILED",
            run.info.run_id,
            pid,
        )
        failed.append(run.info.run_id)
    return failed


@contextlib.contextmanager
def _store_lock(tracking_uri: str) -> Iterator[None]:
    """For a SQLite store, an exclusive lock on ``DB.lock`` beside it while it is opened (the
    first opening creates its tables)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        yield
        return
    try:
        import fcntl
    except ImportError:
        yield
        return
    db = Path(tracking_uri[len(prefix) :])
    if not db.parent.is_dir():
        yield
        return
    with open(f"{db}.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
