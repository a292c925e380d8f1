"""``recsys train``, ``recsys evaluate`` and ``recsys generate``."""

from __future__ import annotations

import argparse
import json
import logging

from cli._common import CliError, format_metrics_table
from recsys import write_synthetic
from training.config import load_config
from training.job import evaluate_saved_model, train_job

__all__ = [
    "add_evaluate_parser",
    "add_generate_parser",
    "add_train_parser",
    "evaluate_command",
    "generate_command",
    "train_command",
]

logger = logging.getLogger("recsys.cli")

#: The largest synthetic network ``recsys generate`` writes (the config's synthetic.members too).
MAX_GENERATED = 10_000_000


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="fit, evaluate on held-out connections, save the model and log an MLflow run"
    )
    p.add_argument("--config", help="YAML config (default: built-in defaults)")
    p.add_argument(
        "--data",
        help="input-layout directory (default: the config's, else the built-in synthetic network)",
    )
    p.add_argument("--output", default="artifacts", help="output directory (default: artifacts)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )


def train_command(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.path={json.dumps(str(args.data))}")
    config = load_config(args.config, overrides=overrides)
    result = train_job(config, output_dir=args.output, on_stage=lambda s: logger.info("%s", s))
    print(format_metrics_table(result.metrics, title=f"Plus One — {result.output_dir}"))
    print(f"\nmodel:   {result.model_dir}")
    print(f"metrics: {result.output_dir / 'metrics.json'}")
    if result.run_id:
        print(
            f"mlflow:  run {result.run_id} in {config.mlflow.tracking_uri} (experiment "
            f"{config.mlflow.experiment})"
        )
    return 0


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a saved model")
    p.add_argument("--model", required=True, help="saved-model directory")
    p.add_argument("--data", help="input-layout directory (default: the model's own data)")
    p.add_argument(
        "--json", action="store_true", help="print one flat JSON object of metric name → number"
    )


def evaluate_command(args: argparse.Namespace) -> int:
    metrics = evaluate_saved_model(args.model, data_dir=args.data)
    if args.json:
        print(json.dumps({k: (v if v == v else None) for k, v in metrics.items()}, sort_keys=True))
    else:
        print(format_metrics_table(metrics, title=f"evaluation of {args.model}"))
    return 0


def add_generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write the synthetic network in the input layout")
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("csv", "csv.gz", "parquet"), default="csv.gz")


def generate_command(args: argparse.Namespace) -> int:
    if not 10 <= args.members <= MAX_GENERATED:
        raise CliError(f"--members must be between 10 and {MAX_GENERATED:,}, got {args.members}")
    paths = write_synthetic(args.output, args.members, seed=args.seed, fmt=args.format)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
