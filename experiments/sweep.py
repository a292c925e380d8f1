"""Grid sweeps: one MLflow parent run, a child training run per grid point, a trade-off plot.

A sweep file is YAML::

    base: default.yaml            # a config file, relative to the sweep file (or an inline
    mapping)
    experiment: plusone-sweeps    # where the parent and its children go
    grid:                         # dotted config keys → the values to try (the product is run)
      rerank.bridge_weight: [0, 0.5, 1.0]
      rerank.degree_penalty: [0, 0.1]

Each point is an ordinary ``recsys train`` (:func:`training.job.train_job`) with the grid values
set, run as a child of the parent; children log no MLflow model and register none (train the
chosen point with a normal ``recsys train`` to register it). The parent gets ``sweep_results.csv``
(grid
values, run ids, every metric) and ``tradeoff.png`` (with matplotlib, the extra ``reports``):
relevance (``recall_at_K``) against
bridging (``bridge_rate``) and against inequality of exposure (``exposure_gini``), with the
Pareto front marked — the points no other point beats on both axes.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys import atomic_write
from training.config import Config, ConfigError, apply_overrides
from training.data import dataset_name
from training.job import train_job
from training.reports import plotting_available
from training.tracking import tracked_run

__all__ = [
    "SweepSpec",
    "SweepResult",
    "load_sweep",
    "grid_points",
    "pareto_front",
    "plot_tradeoff",
    "run_sweep",
]

logger = logging.getLogger(__name__)


class SweepSpec(BaseModel):
    """A parsed sweep file (unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str | dict[str, Any] | None = None
    experiment: str = Field("plusone-sweeps", min_length=1)
    grid: dict[str, list[Any]] = Field(min_length=1)


@dataclass(frozen=True)
class SweepResult:
    parent_run_id: str | None
    results: pd.DataFrame
    plot: Path | None
    table: Path


def load_sweep(path: str | Path) -> tuple[SweepSpec, dict[str, Any]]:
    """Parse a sweep file; returns the spec and the raw base config (a dict, before overrides)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read sweep file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    for key, values in spec.grid.items():
        if not values:
            raise ConfigError(f"{path}: grid.{key}: give at least one value")
    if isinstance(spec.base, str):
        base_path = (path.parent / spec.base).resolve()
        try:
            base = yaml.safe_load(base_path.read_text(encoding="utf-8")) or {}
        except OSError as err:
            raise ConfigError(f"{path}: base config {base_path}: {err.strerror}") from None
        if not isinstance(base, dict):
            raise ConfigError(f"{base_path}: the top level must be a mapping of sections")
        # a relative data.path inside it stays relative to where recsys runs, as for recsys train
    else:
        base = dict(spec.base or {})
    return spec, base


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid values, in key order (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"  # JSON is YAML: typed exactly as written in the sweep file


def point_config(
    base: dict[str, Any], point: dict[str, Any], *, overrides: list[str], experiment: str
) -> Config:
    """The config of one grid point: base, then ``--set`` overrides, then the point's values."""
    raw = apply_overrides(base, list(overrides))
    raw = apply_overrides(raw, [_override(k, v) for k, v in point.items()])
    raw = apply_overrides(
        raw,
        [
            _override("mlflow.experiment", experiment),
            "mlflow.log_model=false",
            "mlflow.register_model=false",
        ],
    )
    return Config.from_dict(
        raw, source="sweep point " + ", ".join(f"{k}={v}" for k, v in point.items())
    )


def pareto_front(
    x: np.ndarray, y: np.ndarray, *, maximize_x: bool = True, maximize_y: bool = True
) -> np.ndarray:
    """(P,) bool: the points not dominated (no other point at least as good on both axes and better
    on one).

    NaN points are never on the front.

    Examples
    --------
    >>> pareto_front(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.4, 0.1]))
    array([ True,  True,  True])
    >>> pareto_front(np.array([0.1, 0.2]), np.array([0.1, 0.4]))
    array([False,  True])
    """
    a = np.asarray(x, dtype=np.float64) * (1 if maximize_x else -1)
    b = np.asarray(y, dtype=np.float64) * (1 if maximize_y else -1)
    ok = np.isfinite(a) & np.isfinite(b)
    ge = (a[None, :] >= a[:, None]) & (b[None, :] >= b[:, None])  # [i, j]: j at least as good as i
    gt = (a[None, :] > a[:, None]) | (b[None, :] > b[:, None])
    dominated = (ge & gt & ok[None, :]).any(axis=1)
    return ok & ~dominated


def plot_tradeoff(
    results: pd.DataFrame, *, k: int, path: Path, label_column: str = "label"
) -> Path:
    """Two panels: recall@K against bridge_rate and against exposure_gini, Pareto front marked."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    recall = f"recall_at_{k}"
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (
        ("bridge_rate", True, "bridge_rate (higher: more introductions across communities)"),
        ("exposure_gini", False, "exposure_gini (lower: introductions spread more evenly)"),
    )
    for ax, (metric, maximize, xlabel) in zip(axes, panels):
        x = results.get(metric, pd.Series(np.nan, index=results.index)).to_numpy(dtype=np.float64)
        y = results.get(recall, pd.Series(np.nan, index=results.index)).to_numpy(dtype=np.float64)
        front = pareto_front(x, y, maximize_x=maximize, maximize_y=True)
        ax.scatter(x[~front], y[~front], color="#999999", label="grid point", zorder=2)
        ax.scatter(x[front], y[front], color="#d62728", s=60, label="Pareto front", zorder=3)
        order = np.argsort(x[front])
        ax.plot(x[front][order], y[front][order], color="#d62728", linewidth=1, zorder=1)
        for xi, yi, text in zip(x, y, results[label_column]):
            if np.isfinite(xi) and np.isfinite(yi):
                ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{recall} (relevance)")
        ax.legend(fontsize="small")
    fig.suptitle(f"Sweep trade-offs over {len(results)} grid points", fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def run_sweep(
    spec: SweepSpec,
    base: dict[str, Any],
    *,
    output_dir: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
) -> SweepResult:
    """Train every grid point as a child run of one parent run; log the results table and the
    trade-off plot.
    """
    output = Path(output_dir)
    points = grid_points(spec.grid)
    configs = [
        point_config(base, p, overrides=list(overrides), experiment=spec.experiment)
        for p in points
    ]  # all validated up front
    parent_config = Config.from_dict(
        apply_overrides(
            apply_overrides(base, list(overrides)),
            [_override("mlflow.experiment", spec.experiment)],
        )
    )
    k = parent_config.evaluation.k
    tags = {"kind": "sweep", "dataset": dataset_name(parent_config), "grid": ", ".join(spec.grid)}
    rows = []
    with tracked_run(
        parent_config, run_name=f"sweep over {', '.join(_short(k) for k in spec.grid)}", tags=tags
    ) as mlflow:
        parent_id = mlflow.active_run().info.run_id if mlflow is not None else None
        if mlflow is not None:
            mlflow.log_param("sweep.grid", json.dumps(spec.grid))
        for i, (point, config) in enumerate(zip(points, configs)):
            label = ", ".join(f"{_short(k)}={v}" for k, v in point.items())
            logger.info("sweep point %d/%d: %s", i + 1, len(points), label)
            result = train_job(config, output_dir=output / f"point-{i:02d}")
            if mlflow is not None and result.run_id:
                client = mlflow.MlflowClient()
                client.set_tag(result.run_id, "mlflow.runName", label)
                client.set_tag(result.run_id, "sweep.point", str(i))
            rows.append(
                {"point": i, "label": label, "run_id": result.run_id, **point, **result.metrics}
            )
        results = pd.DataFrame(rows)
        recall = f"recall_at_{k}"
        for metric, maximize, column in (
            ("bridge_rate", True, "pareto_bridge_rate"),
            ("exposure_gini", False, "pareto_exposure_gini"),
        ):
            if metric in results and recall in results:
                results[column] = pareto_front(
                    results[metric].to_numpy(float),
                    results[recall].to_numpy(float),
                    maximize_x=maximize,
                )
        table = output / "sweep_results.csv"
        atomic_write(table, results.to_csv(index=False))
        plot = (
            plot_tradeoff(results, k=k, path=output / "tradeoff.png")
            if plotting_available()
            else None
        )
        if mlflow is not None:
            mlflow.log_artifact(str(table))
            if plot is not None:
                mlflow.log_artifact(str(plot))
            mlflow.log_metric("points", float(len(points)))
            if recall in results and results[recall].notna().any():
                mlflow.log_metric(f"best_{recall}", float(results[recall].max()))
    return SweepResult(parent_run_id=parent_id, results=results, plot=plot, table=table)


def summary_table(results: pd.DataFrame, *, k: int) -> str:
    """A plain-text table of the grid points: label, relevance, bridging, inequality, Pareto
    marks.
    """
    cols = [
        c
        for c in (
            f"recall_at_{k}",
            "bridge_rate",
            "exposure_gini",
            "exposure_atkinson",
            "coverage",
        )
        if c in results
    ]
    lines = [f"{'point':<40}" + "".join(f"{c:>18}" for c in cols) + "  pareto"]
    for _, row in results.iterrows():
        marks = [
            name
            for name, col in (("bridge", "pareto_bridge_rate"), ("gini", "pareto_exposure_gini"))
            if bool(row.get(col, False))
        ]
        cells = "".join(f"{float(row[c]):>18.4f}" for c in cols)
        lines.append(f"{row['label'][:40]:<40}{cells}  {'+'.join(marks)}")
    return "\n".join(lines)
