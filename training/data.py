"""The network a config names, and what a run is called: shared by every job (train, evaluate,
batch ranking on Spark, the run reports, sweeps and the simulation)."""

from __future__ import annotations

from pathlib import Path

from recsys import (
    DataValidationError,
    Network,
    generate_tables,
    load_network,
    network_from_frames,
)
from training.config import Config

__all__ = [
    "MIN_CONNECTIONS",
    "MIN_MEMBERS",
    "SYNTHETIC_SENSITIVE",
    "check_data_path",
    "check_trainable",
    "dataset_name",
    "load_data",
    "sensitive_attributes",
]

#: The synthetic network's own sensitive column (it plants a minority group there).
SYNTHETIC_SENSITIVE = ("gender",)


def dataset_name(config: Config) -> str:
    if config.data.path is None:
        return f"synthetic-{config.synthetic.members}-seed{config.synthetic.seed}"
    return Path(config.data.path).resolve().name


def sensitive_attributes(config: Config) -> tuple[str, ...]:
    if config.data.path is None and not config.data.sensitive_attributes:
        return SYNTHETIC_SENSITIVE
    return tuple(config.data.sensitive_attributes)


def check_data_path(config: Config) -> None:
    """Refuse a data directory that is not there, before a job starts anything."""
    path = config.data.path
    if path is not None and not Path(path).is_dir():
        problem = "is a file, not a directory" if Path(path).exists() else "does not exist"
        raise DataValidationError(f"data directory {problem}", path=path)


def load_data(config: Config) -> Network:
    """The network named by the config: a data directory, or the built-in synthetic network."""
    if config.data.path is None:
        tables = generate_tables(
            config.synthetic.members,
            seed=config.synthetic.seed,
            minority_share=config.synthetic.minority_share,
        )
        return network_from_frames(
            tables["members"],
            tables["interests"],
            tables["connections"],
            sensitive_attributes=sensitive_attributes(config),
        )
    return load_network(config.data.path, sensitive_attributes=sensitive_attributes(config))


#: The fewest members and connections a model is fitted on: the fit splits connections off
#: twice (held out, then validation for the acceptance model and the re-ranker's tuning), and
#: needs positives and negatives left in each part.
MIN_MEMBERS = 10
MIN_CONNECTIONS = 10


def check_trainable(network: Network) -> None:
    """Refuse, with the numbers, a network too small to fit a model on."""
    if network.n_members < MIN_MEMBERS:
        raise DataValidationError(
            f"{network.n_members} members; training needs at least {MIN_MEMBERS}",
            path=network.source_name("members"),
        )
    if len(network.connections) < MIN_CONNECTIONS:
        raise DataValidationError(
            f"{len(network.connections)} distinct connections; training needs at least "
            f"{MIN_CONNECTIONS}",
            path=network.source_name("connections"),
        )
