"""What every command shares: the user error, logging, the metrics table.

The ``cli`` package imports this module before anything that imports numpy (see
``cli/__init__.py``), so the thread setting below is in place when OpenBLAS loads.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["CliError", "format_metrics_table", "setup_logging"]

# OpenBLAS reads its thread count once, when numpy loads: implicit asks for single-threaded BLAS
# (STYLE.md, habit 4), and a user who did not set it gets that default.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def setup_logging(*, verbose: bool) -> None:
    """Log lines on stderr, INFO (DEBUG with ``--verbose``); the chattiest libraries at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "mlflow", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def format_metrics_table(metrics: dict[str, float], *, title: str = "") -> str:
    """A readable two-column table: relevance, reach and equity figures grouped."""
    order = (
        "recall",
        "ndcg",
        "baseline/",
        "coverage",
        "bridge",
        "plus_one",
        "exposure",
        "max_inbound",
        "equity/",
    )

    def rank(name: str) -> tuple[int, str]:
        for i, prefix in enumerate(order):
            if name.startswith(prefix):
                return i, name
        return len(order), name

    names = sorted(metrics, key=rank)
    width = max((len(n) for n in names), default=10)
    lines = [title, "-" * (width + 14)] if title else []
    for name in names:
        value = metrics[name]
        text = (
            "n/a"
            if value is None or value != value
            else (f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}")
        )
        lines.append(f"{name:<{width}}  {text:>12}")
    return "\n".join(lines)
