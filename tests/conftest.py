"""Shared fixtures: small synthetic networks with planted structure, MLflow kept in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

DEEZER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "deezer_europe"


@pytest.fixture(autouse=True)
def _no_mlflow_server(monkeypatch, tmp_path):
    """Tests never reach a tracking server: MLflow points at a per-test SQLite file."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def small_network():
    from recsys import synthetic_network

    return synthetic_network(1500, seed=11)


@pytest.fixture(scope="session")
def fitted(small_network):
    """A model fitted on a held-out split of the small network."""
    from recsys import IntroductionRecommender, holdout_split

    train, heldout = holdout_split(small_network, fraction=0.1, seed=3)
    model = IntroductionRecommender(pool_size=120, als_iterations=5, random_state=0).fit(train)
    return model, train, heldout


@pytest.fixture(scope="session")
def deezer_dir():
    if not DEEZER.is_dir():
        pytest.skip("../shared/datasets/deezer_europe is absent")
    return DEEZER
