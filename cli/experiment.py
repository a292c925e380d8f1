"""``recsys sweep``, ``recsys compare`` and ``recsys simulate``: the commands of ``experiments``.

(Named in the singular: run as a file, by ``spark-submit``, this directory comes first on
``sys.path``, and a module named ``experiments`` here would hide the package.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli._common import CliError
from experiments.compare import compare_runs
from experiments.comparison_report import render_markdown, write_report
from experiments.simulate import run_simulation
from experiments.sweep import load_sweep, run_sweep, summary_table
from training.config import load_config
from training.reports import REPORTS_HINT

__all__ = [
    "add_compare_parser",
    "add_simulate_parser",
    "add_sweep_parser",
    "compare_command",
    "simulate_command",
    "sweep_command",
]

#: Printed where a plot's path would be when matplotlib is missing.
_NO_PLOT = f"skipped, matplotlib is not installed ({REPORTS_HINT})"


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train every point of a config grid as child runs of one MLflow run, with a "
        "trade-off plot",
    )
    p.add_argument(
        "--config",
        required=True,
        help="sweep YAML: base config, experiment and grid (see configs/sweep.yaml)",
    )
    p.add_argument(
        "--output",
        default="runs/sweep",
        help="directory for the points' outputs and the sweep results (default: runs/sweep)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the base config (repeatable)",
    )


def sweep_command(args: argparse.Namespace) -> int:
    spec, base = load_sweep(args.config)
    result = run_sweep(spec, base, output_dir=args.output, overrides=list(args.overrides))
    k = int(
        next((c.split("_")[-1] for c in result.results.columns if c.startswith("recall_at_")), 20)
    )
    print(summary_table(result.results, k=k))
    print(f"\nresults: {result.table}\nplot:    {result.plot or _NO_PLOT}")
    if result.parent_run_id:
        print(f"mlflow:  parent run {result.parent_run_id} (experiment {spec.experiment})")
    return 0


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="two MLflow runs side by side, with a bootstrap test of inequality of outcomes",
    )
    p.add_argument("run_a", metavar="RUN_A", help="MLflow run id of the baseline")
    p.add_argument("run_b", metavar="RUN_B", help="MLflow run id of the change")
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    p.add_argument("--output", help="write the report to this .md or .html file (with the plots)")
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def compare_command(args: argparse.Namespace) -> int:
    if args.output and not args.output.lower().endswith((".md", ".html", ".htm")):
        raise CliError(f"--output {args.output}: the report must end in .md or .html")
    if args.bootstrap < 10:
        raise CliError("--bootstrap must be at least 10")
    try:
        comparison = compare_runs(
            args.run_a,
            args.run_b,
            tracking_uri=args.tracking_uri,
            n_boot=args.bootstrap,
            random_state=args.seed,
        )
    except LookupError as err:
        raise CliError(str(err)) from None
    print(render_markdown(comparison))
    if args.output:
        print(f"report: {write_report(comparison, args.output)}")
    return 0


def add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="feedback-loop simulation of the unconstrained and re-ranked policies"
    )
    p.add_argument(
        "--config", help="YAML config (default: built-in defaults; see configs/simulate.yaml)"
    )
    p.add_argument("--rounds", type=int, help="rounds to simulate (default: simulation.rounds)")
    p.add_argument(
        "--output",
        default="runs/simulation",
        help="directory for the history, groups and plot (default: runs/simulation)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )


def simulate_command(args: argparse.Namespace) -> int:
    if args.rounds is not None and args.rounds < 1:
        raise CliError(f"--rounds must be a positive whole number, got {args.rounds}")
    config = load_config(args.config, overrides=list(args.overrides))
    result = run_simulation(config, output_dir=args.output, rounds=args.rounds)
    cols = [
        c
        for c in (
            "round",
            "degree_gini",
            "degree_atkinson",
            "modularity",
            "bridge_share",
            "accepted",
            "accepted_bridge_share",
        )
        if c in result.history
    ]
    for policy, frame in result.history.groupby("policy", sort=False):
        print(f"\n{policy}")
        print(frame[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(
        f"\n{result.seconds:.0f} s; history: {Path(args.output) / 'simulation_history.csv'}; "
        f"plot: {result.plot or _NO_PLOT}"
    )
    if result.parent_run_id:
        print(
            f"mlflow:  parent run {result.parent_run_id} (experiment "
            f"{config.simulation.experiment})"
        )
    return 0
