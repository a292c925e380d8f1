"""``recsys simulate``: the feedback-loop simulation of two policies, tracked in MLflow.

One parent run (experiment ``simulation.experiment``, default ``plusone-simulation``) with a
child run per policy:

- ``unconstrained`` — slates by the acceptance score alone (``rerank=False``);
- ``rerank`` — the project's re-ranked slates (bridging bonus, popularity damping, +1 rule).

Each child logs the per-round figures of :func:`recsys._simulation.simulate_feedback_loop` with
``step=round``; the parent gets ``simulation_history.csv``, ``simulation_groups.csv``
(aggregates, small groups suppressed) and ``simulation.png`` (the curves of both policies; with
matplotlib, the extra ``reports``).

What is refitted between rounds (``simulation.refit``): ``full`` fits the whole recommender on
the grown network each round; ``graph`` (the default, for large networks) fits once and then,
each round, re-detects the communities and rebuilds the graph-based candidate sources and pair
features, keeping the interest embeddings (interests do not change in the simulation) and the
acceptance model. Both policies start from the same round-0 fit. At 100,000 members rank a
sample per round (``simulation.members_per_round``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys import (
    AcceptanceBehaviour,
    IntroductionRecommender,
    Network,
    RoundOutcome,
    SimulationResult,
    atomic_write,
    simulate_feedback_loop,
)
from training.config import Config
from training.data import dataset_name, load_data
from training.factory import build_recommender, recommender_params
from training.reports import plotting_available
from training.tracking import log_metrics, tracked_run

__all__ = ["POLICIES", "SimulationRun", "refit_graph", "run_simulation", "plot_simulation"]

logger = logging.getLogger(__name__)

#: Policy name → the ``rerank`` flag of ``IntroductionRecommender.rank``.
POLICIES: dict[str, bool] = {"unconstrained": False, "rerank": True}

#: Panels of the simulation plot: metric → (title, lower is more equal / less segregated?).
_PANELS = {
    "degree_gini": "Gini of degree",
    "degree_atkinson": "Atkinson of degree",
    "gain_gini": "Gini of connections gained",
    "modularity": "modularity (re-detected communities)",
    "bridge_share": "connections across starting communities",
    "accepted": "introductions accepted per round",
    "accepted_bridge_share": "accepted introductions that bridge",
    "small_network_share": "members with < 5 connections",
}


@dataclass(frozen=True)
class SimulationRun:
    parent_run_id: str | None
    results: dict[str, SimulationResult]
    history: pd.DataFrame
    plot: Path | None
    seconds: float


def refit_graph(model: IntroductionRecommender, network: Network) -> IntroductionRecommender:
    """A copy of ``model`` refreshed on ``network``: new communities, graph sources and pair
    features; the interest embeddings, the acceptance model and the re-ranker setting are kept
    (:meth:`recsys.IntroductionRecommender.refit_graph`)."""
    return model.refit_graph(network)


def _policy(
    base: IntroductionRecommender, *, rerank: bool, refit: str, fit_params: dict[str, Any]
):
    def for_round(network: Network, round_index: int):
        if round_index == 0:
            model = base
        elif refit == "graph":
            model = refit_graph(base, network)
        else:
            model = IntroductionRecommender(**fit_params).fit(network)

        def rank(rows: np.ndarray, k: int):
            return model.rank(rows, k, rerank=rerank)

        return rank

    return for_round


def plot_simulation(history: pd.DataFrame, *, path: Path, title: str = "") -> Path:
    """One panel per tracked figure, one line per policy, rounds on the x axis."""
    from matplotlib.figure import Figure

    panels = dict(_PANELS)
    for col in history.columns:
        if col.startswith("degree_gap/"):
            panels[col] = f"mean-degree gap between {col.split('/', 1)[1]} groups"
    panels = {k: v for k, v in panels.items() if k in history.columns}
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (metric, label) in zip(axes, panels.items()):
        for policy, frame in history.groupby("policy", sort=False):
            data = frame.dropna(subset=[metric])
            ax.plot(data["round"], data[metric], marker="o", label=policy)
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("round")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    fig.suptitle(title or "Feedback-loop simulation", fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def run_simulation(
    config: Config, *, output_dir: str | Path, rounds: int | None = None
) -> SimulationRun:
    """Fit once, simulate every policy for ``rounds`` rounds, track it all under one parent run."""
    started = time.perf_counter()
    sim = config.simulation
    rounds = rounds or sim.rounds
    raw = config.to_dict()
    raw["mlflow"]["experiment"] = sim.experiment
    raw["simulation"]["rounds"] = rounds
    config = Config.from_dict(raw)
    output = Path(output_dir)
    behaviour = AcceptanceBehaviour(**sim.behaviour.model_dump())
    tags = {"kind": "simulation", "dataset": dataset_name(config)}
    results: dict[str, SimulationResult] = {}
    with tracked_run(config, run_name=f"simulation, {rounds} rounds", tags=tags) as mlflow:
        parent_id = mlflow.active_run().info.run_id if mlflow is not None else None
        network = load_data(config)
        logger.info(
            "simulating on %d members, %d connections; fitting the round-0 model",
            network.n_members,
            len(network.connections),
        )
        base = build_recommender(config).fit(network)
        fit_seconds = time.perf_counter() - started
        for name, rerank in POLICIES.items():
            with tracked_run(config, run_name=name, tags={**tags, "policy": name}) as child:

                def log_round(outcome: RoundOutcome, child=child) -> None:
                    if child is not None:
                        finite = {
                            k: float(v)
                            for k, v in outcome.metrics.items()
                            if v is not None and math.isfinite(float(v))
                        }
                        child.log_metrics(finite, step=outcome.round)

                policy_started = time.perf_counter()
                results[name] = simulate_feedback_loop(
                    network,
                    _policy(
                        base, rerank=rerank, refit=sim.refit, fit_params=recommender_params(config)
                    ),
                    rounds=rounds,
                    k=config.evaluation.k,
                    members_per_round=sim.members_per_round,
                    behaviour=behaviour,
                    min_group_size=config.data.min_group_size,
                    atkinson_epsilon=config.evaluation.atkinson_epsilon,
                    random_state=sim.seed,
                    on_round=log_round,
                )
                if child is not None:
                    child.log_metric("policy_seconds", time.perf_counter() - policy_started)
        history = pd.concat(
            [r.history.assign(policy=p) for p, r in results.items()], ignore_index=True
        )
        history = history[["policy"] + [c for c in history.columns if c != "policy"]]
        groups = pd.concat(
            [r.groups.assign(policy=p) for p, r in results.items()], ignore_index=True
        )
        atomic_write(output / "simulation_history.csv", history.to_csv(index=False))
        atomic_write(output / "simulation_groups.csv", groups.to_csv(index=False))
        plot = (
            plot_simulation(
                history,
                path=output / "simulation.png",
                title=f"Feedback loop on {tags['dataset']}: {rounds} rounds, "
                f"{sim.members_per_round or network.n_members:,} members ranked per round",
            )
            if plotting_available()
            else None
        )
        seconds = time.perf_counter() - started
        if mlflow is not None:
            final = history[history["round"] == rounds]
            summary = {
                f"final/{row['policy']}/{col}": row[col]
                for _, row in final.iterrows()
                for col in (
                    "degree_gini",
                    "degree_atkinson",
                    "modularity",
                    "bridge_share",
                    "accepted",
                )
                if col in final
            }
            log_metrics(
                mlflow, {**summary, "simulation_seconds": seconds, "fit_seconds": fit_seconds}
            )
            for path in ("simulation_history.csv", "simulation_groups.csv"):
                mlflow.log_artifact(str(output / path))
            if plot is not None:
                mlflow.log_artifact(str(plot))
    return SimulationRun(
        parent_run_id=parent_id, results=results, history=history, plot=plot, seconds=seconds
    )
