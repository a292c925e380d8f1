"""What a training run logs to MLflow beyond its metrics: equity extras, plots, the model.

``log_run_reports`` is called by ``training.job.train_job`` inside the active run, after the
metrics, ``metrics.json``, ``config.yaml`` and the model directory have been logged. It adds:

- **extra metrics** (:func:`evaluation_extras`): per-group exposure and recall for communities
  and network-size tiers, skew@k and NDKL per sensitive attribute, Atkinson indices of
  per-member outcomes with bootstrap intervals, and reach (communities a member's network would
  touch after accepting the slate), overall and per network-size tier;
- **per-group CSVs** under ``groups/`` (aggregates only, small groups suppressed);
- **plots** under ``plots/`` (exposure by group against population share, the Lorenz curve of
  introductions received, reach by network size), when matplotlib is installed (the extra
  ``reports``; without it one warning says the plots were skipped);
- ``per_member.parquet``: per-member outcomes (introductions received, held-out recall, reach
  gain) indexed by anonymous member row only — no member id, no sensitive value — that
  ``recsys compare`` bootstraps;
- the **MLflow model**: a pyfunc over the saved model directory, registered under
  ``mlflow.model_name`` (see :mod:`training.mlflow_model`).

Every figure from a group smaller than ``data.min_group_size`` is left out, in metrics, tables
and plots alike.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys import atomic_write, heldout_matrix, holdout_split
from recsys import metrics as m
from training.data import load_data
from training.mlflow_model import log_pyfunc_model
from training.privacy import publishable_tables, shuffled_rows
from training.tracking import log_metrics

__all__ = [
    "REPORTS_HINT",
    "ReportExtras",
    "evaluation_extras",
    "log_run_reports",
    "metric_key",
    "plot_exposure_by_group",
    "plot_lorenz",
    "plotting_available",
]

logger = logging.getLogger(__name__)

#: Structural groupings reported besides the sensitive attributes (names used in metric keys).
COMMUNITY = "community"
NETWORK_SIZE = "network_size"


def metric_key(*parts: str) -> str:
    """Join parts into an MLflow-safe flat name (letters, digits, ``_ - . /`` and spaces)."""
    return "/".join(re.sub(r"[^0-9A-Za-z_\-. ]", "_", str(p)) for p in parts)


@dataclass(frozen=True)
class ReportExtras:
    """What :func:`evaluation_extras` computed.

    ``metrics``: flat name → float; ``tables``: name → per-group DataFrame (aggregates,
    suppressed rows marked); ``per_member``: (n,) rows, anonymous, columns
    ``introductions_received`` (int64), ``heldout_recall`` and ``reach_gain`` (float64, NaN where
    the member was not evaluated); ``lorenz``: (population_share, outcome_share) of
    introductions received.
    """

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    per_member: pd.DataFrame
    lorenz: tuple[np.ndarray, np.ndarray]


def _per_member_recall(
    rows: np.ndarray, ids: np.ndarray, train: Any, heldout: np.ndarray, k: int
) -> np.ndarray:
    """(R,) held-out recall, NaN for members without held-out or training connections (as
    evaluate_slates).
    """
    if heldout is None or not len(heldout):
        return np.full(len(rows), np.nan)
    relevant = heldout_matrix(heldout, train.n_members)[rows]
    eligible = (np.diff(relevant.indptr) > 0) & (train.degrees[rows] > 0)
    return np.where(eligible, m.recall_at_k(ids, relevant, k=k), np.nan)


def _bootstrap(
    values: np.ndarray, *, epsilon: float, n_boot: int, seed: int
) -> tuple[float, float, float]:
    if n_boot < 1:
        return m.atkinson(values, epsilon=epsilon), math.nan, math.nan
    return m.atkinson_bootstrap(values, epsilon=epsilon, n_boot=n_boot, random_state=seed)


def evaluation_extras(
    slates: Any,
    *,
    train: Any,
    heldout: np.ndarray | None,
    communities: np.ndarray,
    k: int,
    min_group_size: int = 20,
    atkinson_epsilon: float = 0.5,
    bootstrap_samples: int = 300,
    random_state: int = 0,
    ensemble: np.ndarray | None = None,
) -> ReportExtras:
    """The reach and equity figures a run reports beyond DESIGN.md's metrics.

    Parameters
    ----------
    slates : recsys.Slates
        ``member_rows`` (R,), ``ids`` (R, >= k) of the evaluated members.
    train : recsys.Network
        The training network (its ``sensitive`` columns name the attributes reported).
    heldout : (H, 2) int array or None
        Held-out pairs; ``None`` or empty skips the recall figures.
    communities : (n,) int array
        Communities of the training graph (``model.communities_``).
    ensemble : (n, M) int array, optional
        The model's community ensemble: reach is also counted in each of its partitions and
        averaged (``reach/ensemble/*``), so that a gain is not the luck of one boundary.
    k : int
        Slate size measured.
    min_group_size : int
        Groups with fewer members are suppressed everywhere.
    atkinson_epsilon : float
        Inequality aversion of the Atkinson indices.
    bootstrap_samples : int
        Resamples behind the confidence intervals (0: none, the bounds are NaN and not logged).
    random_state : int
        Seed of the bootstrap.

    Returns
    -------
    ReportExtras
    """
    n = train.n_members
    rows = np.asarray(slates.member_rows, dtype=np.int64)
    ids = np.asarray(slates.ids)[:, :k]
    metrics: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}

    exposure = m.exposure_counts(ids, n_members=n)
    recall = _per_member_recall(rows, ids, train, heldout, k)
    before, after = m.reach(rows, ids, train.adjacency, communities)
    gain = (after - before).astype(np.float64)
    if ensemble is not None and len(rows):
        per_partition = [m.reach(rows, ids, train.adjacency, labels) for labels in ensemble.T]
        gains = np.stack([a - b for b, a in per_partition]).astype(np.float64)
        metrics["reach/ensemble/mean_gain"] = float(gains.mean())
        metrics["reach/ensemble/share_gaining"] = float((gains > 0).mean())

    # --- inequality of per-member outcomes (Atkinson with a bootstrap interval, Gini)
    _, low, high = _bootstrap(
        exposure, epsilon=atkinson_epsilon, n_boot=bootstrap_samples, seed=random_state
    )
    metrics["exposure_atkinson_ci_low"], metrics["exposure_atkinson_ci_high"] = low, high
    known = recall[~np.isnan(recall)]
    if known.size:
        est, low, high = _bootstrap(
            known, epsilon=atkinson_epsilon, n_boot=bootstrap_samples, seed=random_state
        )
        (
            metrics["recall_atkinson"],
            metrics["recall_atkinson_ci_low"],
            metrics["recall_atkinson_ci_high"],
        ) = est, low, high
        metrics["recall_gini"] = m.gini(known)

    # --- reach: distinct communities touched before / after accepting the whole slate
    if len(rows):
        metrics["reach/mean_before"] = float(before.mean())
        metrics["reach/mean_after"] = float(after.mean())
        metrics["reach/mean_gain"] = float(gain.mean())
        metrics["reach/share_gaining"] = float(np.mean(gain > 0))
    tiers = m.network_size_tiers(train.degrees)
    reach_rows = []
    for tier in m.NETWORK_SIZE_TIERS:
        mask = tiers[rows] == tier
        count = int(mask.sum())
        suppressed = count < min_group_size
        row = {
            "group": tier,
            "members": pd.NA if suppressed else count,
            "suppressed": suppressed,
            "mean_before": np.nan,
            "mean_after": np.nan,
            "mean_gain": np.nan,
            "share_gaining": np.nan,
        }
        if not suppressed:
            row.update(
                mean_before=float(before[mask].mean()),
                mean_after=float(after[mask].mean()),
                mean_gain=float(gain[mask].mean()),
                share_gaining=float(np.mean(gain[mask] > 0)),
            )
            for name in ("mean_before", "mean_after", "mean_gain", "share_gaining"):
                metrics[metric_key("reach", tier, name)] = row[name]
        reach_rows.append(row)
    tables[f"reach/{NETWORK_SIZE}"] = pd.DataFrame(reach_rows).astype({"members": "Int64"})

    # --- per-group exposure and recall for the structural groupings
    structural = {COMMUNITY: np.asarray(communities).astype(str), NETWORK_SIZE: tiers.astype(str)}
    for name, labels in structural.items():
        table = m.group_exposure_table(exposure, labels, min_group_size=min_group_size)
        tables[f"{name}/exposure"] = table
        metrics[f"{name}/exposure_ratio"] = _ratio(table, "ratio")
        if known.size:
            rtable = m.group_recall_table(recall, labels[rows], min_group_size=min_group_size)
            tables[f"{name}/recall"] = rtable
            metrics[f"{name}/recall_ratio"] = _ratio(rtable, "mean_recall")
    for tier_table, column, suffix in (
        (tables[f"{NETWORK_SIZE}/exposure"], "ratio", "exposure_ratio"),
        (tables.get(f"{NETWORK_SIZE}/recall"), "mean_recall", "mean_recall"),
    ):
        if tier_table is None:
            continue
        for _, row in tier_table.loc[~tier_table["suppressed"]].iterrows():
            metrics[metric_key(NETWORK_SIZE, row["group"], suffix)] = float(row[column])

    # --- skew@k and NDKL per sensitive attribute, target = population shares
    for attr in train.sensitive.columns:
        labels = train.sensitive[attr].to_numpy(dtype=object).astype(str)
        counts = pd.Series(labels).value_counts()
        target = (counts / counts.sum()).to_dict()
        big = set(counts.index[counts >= min_group_size])
        skew = m.skew_at_k(ids, labels, target, k=k)
        skew["suppressed"] = ~skew["group"].isin(big)
        skew.loc[skew["suppressed"], ["target_share", "mean_share", "skew"]] = np.nan
        tables[f"equity/{attr}/skew"] = skew
        shown = skew.loc[~skew["suppressed"]]
        for _, row in shown.iterrows():
            if np.isfinite(row["skew"]):
                metrics[metric_key(f"skew_at_{k}", attr, row["group"])] = float(row["skew"])
        if len(shown) and np.isfinite(shown["skew"]).any():
            metrics[metric_key(f"min_skew_at_{k}", attr)] = float(shown["skew"].min())
            metrics[metric_key(f"max_skew_at_{k}", attr)] = float(shown["skew"].max())
        divergence = m.ndkl(ids, labels, target, k=k)
        if np.isfinite(divergence).any():
            metrics[metric_key("ndkl", attr)] = float(np.nanmean(divergence))

    recall_full = np.full(n, np.nan)
    gain_full = np.full(n, np.nan)
    recall_full[rows] = recall
    gain_full[rows] = gain
    per_member = pd.DataFrame(
        {
            "introductions_received": exposure.astype(np.int64),
            "heldout_recall": recall_full,
            "reach_gain": gain_full,
        }
    )
    return ReportExtras(
        metrics=metrics, tables=tables, per_member=per_member, lorenz=m.lorenz_curve(exposure)
    )


def _ratio(table: pd.DataFrame, column: str) -> float:
    values = table.loc[~table["suppressed"], column].to_numpy(dtype=np.float64)
    if values.size < 2 or np.isnan(values).any() or values.max() <= 0:
        return math.nan
    return float(values.min() / values.max())


# ----------------------------------------------------------------------------------------------
# plots (matplotlib's object API: no pyplot state, no backend switch; PNG through Agg)
# ----------------------------------------------------------------------------------------------

#: What installs matplotlib, the plots' one dependency (an optional extra).
REPORTS_HINT = "pip install 'plusone[reports]'"


@functools.cache
def plotting_available() -> bool:
    """Whether matplotlib is installed. When it is not, plots are skipped and everything else is
    logged; the first call says so in one warning (``functools.cache``: once per process, so a
    sweep warns once, not once per point)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        logger.warning(
            "matplotlib is not installed: plots are skipped, everything else is logged "
            "(for the plots: %s)",
            REPORTS_HINT,
        )
        return False
    return True


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_exposure_by_group(
    exposure_table: pd.DataFrame,
    recall_table: pd.DataFrame | None,
    *,
    title: str,
    path: Path,
    max_groups: int = 30,
) -> Path | None:
    """Horizontal bars: each group's share of introductions against its share of members, and its
    mean recall.

    Suppressed groups are not drawn (a note says how many). Returns ``None`` (and draws
    nothing) when no group is left.
    """
    shown = exposure_table.loc[~exposure_table["suppressed"]]
    if shown.empty:
        return None
    shown = shown.sort_values("population_share", ascending=False).head(max_groups).iloc[::-1]
    panels = 2 if recall_table is not None else 1
    fig = _figure(5.2 * panels, 1.4 + 0.32 * len(shown))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    y = np.arange(len(shown))
    ax = axes[0]
    ax.barh(
        y + 0.2, shown["population_share"], height=0.4, color="#bbbbbb", label="share of members"
    )
    ax.barh(
        y - 0.2,
        shown["exposure_share"],
        height=0.4,
        color="#1f77b4",
        label="share of introductions received",
    )
    ax.set_yticks(y, shown["group"].astype(str))
    ax.set_xlabel("share")
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("exposure against population share", fontsize="medium")
    if recall_table is not None:
        rec = recall_table.set_index("group").reindex(shown["group"])
        axes[1].barh(
            y, rec["mean_recall"], height=0.6, color="#2ca02c"
        )  # NaN (suppressed): no bar
        axes[1].set_yticks(y, shown["group"].astype(str))
        axes[1].set_xlabel("mean held-out recall")
        axes[1].set_title("quality of service (recall)", fontsize="medium")
    hidden = int(exposure_table["suppressed"].sum())
    note = f" ({hidden} group(s) under the minimum size not shown)" if hidden else ""
    cut = len(exposure_table) - hidden - len(shown)
    note += f" (largest {len(shown)} of {len(shown) + cut} shown)" if cut > 0 else ""
    fig.suptitle(f"{title}{note}", fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_lorenz(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str,
    path: Path,
    notes: dict[str, str] | None = None,
    max_points: int = 2000,
) -> Path:
    """Lorenz curves (one per label) against the line of equality."""
    fig = _figure(5.5, 5.0)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="equality")
    for label, (population, outcome) in curves.items():
        step = max(1, len(population) // max_points)
        idx = np.unique(np.r_[np.arange(0, len(population), step), len(population) - 1])
        text = label + (f" — {notes[label]}" if notes and label in notes else "")
        ax.plot(population[idx], outcome[idx], linewidth=2, label=text)
    ax.set_xlabel("share of members (fewest introductions first)")
    ax.set_ylabel("share of introductions received")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper left", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_reach(reach_table: pd.DataFrame, *, path: Path) -> Path | None:
    """Mean communities touched before and after accepting the slate, per network-size tier."""
    shown = reach_table.loc[~reach_table["suppressed"]]
    if shown.empty:
        return None
    fig = _figure(5.5, 3.8)
    ax = fig.subplots()
    x = np.arange(len(shown))
    ax.bar(x - 0.2, shown["mean_before"], width=0.4, color="#bbbbbb", label="own network")
    ax.bar(
        x + 0.2, shown["mean_after"], width=0.4, color="#ff7f0e", label="with the slate accepted"
    )
    ax.set_xticks(
        x, [f"{g}\n({int(c):,} members)" for g, c in zip(shown["group"], shown["members"])]
    )
    ax.set_ylabel("distinct communities touched")
    ax.set_title("reach by network size", fontsize="medium")
    ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _draw_run_plots(evaluation: Any, extras: ReportExtras, train: Any, plot_dir: Path) -> None:
    """The run's plots under ``plot_dir``: exposure by group, the Lorenz curve, reach."""
    all_tables = {**evaluation.tables, **extras.tables}
    groupings = [(f"equity/{a}", a) for a in train.sensitive.columns] + [
        (COMMUNITY, COMMUNITY),
        (NETWORK_SIZE, NETWORK_SIZE),
    ]
    for prefix, label in groupings:
        exposure_table = all_tables.get(f"{prefix}/exposure")
        if exposure_table is not None:
            plot_exposure_by_group(
                exposure_table,
                all_tables.get(f"{prefix}/recall"),
                title=f"Introductions by {label.replace('_', ' ')}",
                path=plot_dir / f"exposure_by_{label}.png",
            )
    gini = evaluation.metrics.get("exposure_gini", math.nan)
    atk = evaluation.metrics.get("exposure_atkinson", math.nan)
    note = f"Gini {gini:.3f}, Atkinson {atk:.3f}"
    if math.isfinite(extras.metrics.get("exposure_atkinson_ci_low", math.nan)):
        note += (
            f" [{extras.metrics['exposure_atkinson_ci_low']:.3f}, "
            f"{extras.metrics['exposure_atkinson_ci_high']:.3f}]"
        )
    plot_lorenz(
        {"introductions received": extras.lorenz},
        notes={"introductions received": note},
        title="Lorenz curve of introductions received",
        path=plot_dir / "lorenz_introductions_received.png",
    )
    plot_reach(extras.tables[f"reach/{NETWORK_SIZE}"], path=plot_dir / "reach_by_network_size.png")


# ----------------------------------------------------------------------------------------------
# the hook
# ----------------------------------------------------------------------------------------------


def _heldout_for(config: Any, train: Any) -> np.ndarray | None:
    """The held-out pairs of the run, re-derived from the config (the split is seeded and
    deterministic).

    ``train_job`` does not hand them to this hook; reloading the data costs about a second on
    the data sets we use. A mismatch with ``train`` (the data changed under us) skips recall.
    """
    if config.split.holdout_fraction == 0:
        return np.empty((0, 2), dtype=np.int32)
    network = load_data(config)
    again, heldout = holdout_split(
        network, fraction=config.split.holdout_fraction, seed=config.split.seed
    )
    if again.n_members != train.n_members or again.adjacency.nnz != train.adjacency.nnz:
        logger.warning(
            "could not re-derive the held-out split; per-member recall left out of the report"
        )
        return None
    return heldout


def log_run_reports(
    mlflow: Any,
    *,
    model: Any,
    train: Any,
    evaluation: Any,
    config: Any,
    output_dir: Path,
    heldout: np.ndarray | None = None,
) -> ReportExtras:
    """Log the extra metrics, per-group CSVs, plots, per-member outcomes and the MLflow model.

    Also writes them under ``output_dir`` (``groups/``, ``plots/``, ``per_member.parquet``) and
    merges the extra metrics into ``output_dir/metrics.json``.
    """
    output_dir = Path(output_dir)
    if heldout is None:
        heldout = _heldout_for(config, train)
    k = config.evaluation.k
    min_size = config.data.min_group_size
    extras = evaluation_extras(
        evaluation.slates,
        train=train,
        heldout=heldout,
        communities=model.communities_,
        ensemble=model.state_.community_ensemble,
        k=k,
        min_group_size=min_size,
        atkinson_epsilon=config.evaluation.atkinson_epsilon,
        bootstrap_samples=config.evaluation.bootstrap_samples,
        random_state=config.evaluation.seed,
    )
    log_metrics(mlflow, extras.metrics)
    metrics_path = output_dir / "metrics.json"
    if metrics_path.is_file():
        merged = json.loads(metrics_path.read_text(encoding="utf-8"))
        merged.update(
            {key: (v if math.isfinite(v) else None) for key, v in extras.metrics.items()}
        )
        atomic_write(metrics_path, json.dumps(merged, indent=2, sort_keys=True))
        mlflow.log_artifact(str(metrics_path))

    group_dir = output_dir / "groups"
    for name, table in publishable_tables(extras.tables).items():  # no suppressed label
        atomic_write(group_dir / (name.replace("/", "__") + ".csv"), table.to_csv(index=False))
    if group_dir.exists():
        mlflow.log_artifacts(str(group_dir), artifact_path="groups")

    plot_dir = output_dir / "plots"
    if plot_dir.exists():
        shutil.rmtree(plot_dir)
    if plotting_available():
        _draw_run_plots(evaluation, extras, train, plot_dir)
        mlflow.log_artifacts(str(plot_dir), artifact_path="plots")

    per_member_path = output_dir / "per_member.parquet"
    # seeded shuffle: the row order must not lead back to the member table
    shuffled_rows(extras.per_member, seed=config.evaluation.seed).to_parquet(
        per_member_path, index=False
    )
    mlflow.log_artifact(str(per_member_path))

    model_dir = output_dir / "model"
    if config.mlflow.log_model and (model_dir / "manifest.json").is_file():
        log_pyfunc_model(
            mlflow,
            model_dir=model_dir,
            k=k,
            registered_model_name=config.mlflow.model_name
            if config.mlflow.register_model
            else None,
            alias=config.mlflow.alias,
        )
    return extras
