"""The ``recsys`` command line (see DESIGN.md, "Command line"): :func:`main` and the parser.

One module per command group: :mod:`cli.train` (train, evaluate, generate), :mod:`cli.rank`
(rank, broker), :mod:`cli.serve` (serve) and :mod:`cli.experiment` (sweep, compare, simulate);
:mod:`cli._common` holds what they share. The package sits on top of ``training``,
``experiments`` and ``serving``; nothing imports it. ``python -m cli`` runs it too.
"""

from __future__ import annotations

import argparse
import sys

# cli._common first: it sets the BLAS thread default before anything below imports numpy
from cli import _common, experiment, rank, serve, train
from recsys import DataValidationError, ModelFormatError
from training.config import ConfigError
from training.output import OutputError

__all__ = ["main", "build_parser"]

#: command → (adds its subparser, runs it), in the order ``recsys --help`` lists them.
COMMANDS = {
    "train": (train.add_train_parser, train.train_command),
    "evaluate": (train.add_evaluate_parser, train.evaluate_command),
    "rank": (rank.add_rank_parser, rank.rank_command),
    "broker": (rank.add_broker_parser, rank.broker_command),
    "serve": (serve.add_serve_parser, serve.serve_command),
    "sweep": (experiment.add_sweep_parser, experiment.sweep_command),
    "compare": (experiment.add_compare_parser, experiment.compare_command),
    "simulate": (experiment.add_simulate_parser, experiment.simulate_command),
    "generate": (train.add_generate_parser, train.generate_command),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys", description="Plus One: introductions that widen people's networks."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in COMMANDS.values():
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _common.setup_logging(verbose=args.verbose)
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except (
        _common.CliError,
        ConfigError,
        DataValidationError,
        ModelFormatError,
        FileNotFoundError,
        OutputError,
    ) as err:
        print(f"recsys {args.command}: error: {err}", file=sys.stderr)
        return 2
