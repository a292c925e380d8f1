"""``recsys serve``: the HTTP service (needs ``pip install 'plusone[serve]'``)."""

from __future__ import annotations

import argparse
import os

from cli._common import CliError

__all__ = ["add_serve_parser", "serve_command"]

#: The modules of the extra ``serve`` (a missing one is a one-line error, not a traceback).
SERVE_EXTRA = frozenset({"fastapi", "starlette", "uvicorn"})
INSTALL_HINT = "pip install 'plusone[serve]'"


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the HTTP service")
    p.add_argument(
        "--model",
        required=True,
        help="saved-model directory or MLflow model URI (models:/NAME@ALIAS)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=30.0,
        help="how often to look for a new model version (0: never)",
    )
    p.add_argument(
        "--precompute",
        metavar="N|all",
        help="after each load, rank the slates of the N best-connected members "
        "(or all) in the background, capacity held across them, and answer from that table "
        "(default: "
        "$PLUSONE_PRECOMPUTE, else 0)",
    )


def serve_command(args: argparse.Namespace) -> int:
    try:  # FastAPI and uvicorn are the optional extra serve: imported only by this command
        import uvicorn  # noqa: F401

        from serving.app import PRECOMPUTE_ENV, check_environment, parse_precompute, serve
    except ImportError as err:
        if err.name not in SERVE_EXTRA:
            raise
        raise CliError(
            f"the HTTP service needs {err.name}, which is not installed: {INSTALL_HINT}"
        ) from None

    if args.precompute is not None:
        try:
            parse_precompute(
                args.precompute, "--precompute"
            )  # a bad value stops here, not in a worker
        except ValueError as err:
            raise CliError(str(err)) from None
        os.environ[PRECOMPUTE_ENV] = args.precompute
    try:
        check_environment()  # a bad PLUSONE_* value stops here, named, not in a worker
    except ValueError as err:
        raise CliError(str(err)) from None
    if not args.poll_seconds >= 0:
        raise CliError(f"--poll-seconds must be 0 or more, got {args.poll_seconds}")
    serve(args.model, host=args.host, port=args.port, poll_seconds=args.poll_seconds)
    return 0
