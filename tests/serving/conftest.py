"""Fixtures for the serving tests: one small model trained once per session, on a synthetic
network whose sensitive attribute holds distinctive strings (``SECRET_GROUP_*``): no response, log
line or saved file may ever show them.

The helpers the tests call (``member``, ``replace_dir``, ``capacity_of``) and the secret string
come as fixtures: this directory has no ``__init__.py`` (as a package it would be named
``serving`` and hide the real one), so its test modules cannot import a sibling module.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import recsys
from serving import Recommender
from serving.app import create_app

SECRET = "SECRET_GROUP"
TOKEN = "test-admin-token"


# ---------------------------------------------------------------------------------- models
@pytest.fixture(scope="session")
def secret_network():
    """The synthetic network with its sensitive column relabelled to distinctive strings."""
    tables = recsys.generate_tables(500, seed=1)
    members = tables["members"].copy()
    members["gender"] = members["gender"].map({"a": f"{SECRET}_X", "b": f"{SECRET}_Y"})
    return recsys.network_from_frames(
        members, tables["interests"], tables["connections"], sensitive_attributes=("gender",)
    )


@pytest.fixture(scope="session")
def models(secret_network, tmp_path_factory):
    """Two versions over the same members: ``a`` (re-ranked) and ``b`` (acceptance score only),
    saved once each.
    """
    root = tmp_path_factory.mktemp("serving-models")
    model = recsys.IntroductionRecommender(pool_size=60, als_iterations=3).fit(secret_network)
    a = recsys.save_model(model, root / "a")
    # a second version that ranks differently, without a second fit
    b = recsys.save_model(model.with_setting(rerank=False), root / "b")
    return {"a": a, "b": b, "root": root}


@pytest.fixture(scope="session")
def reference(models):
    """The library's own answers for version a."""
    return recsys.load_model(models["a"])


@pytest.fixture(scope="session")
def capacity_one(models, tmp_path_factory):
    """Version a with a capacity of one slate per member (capacity_multiple × k = 1)."""
    model = recsys.load_model(models["a"]).with_setting(capacity_multiple=0.05)
    return recsys.save_model(model, tmp_path_factory.mktemp("capacity") / "model")


@pytest.fixture(scope="session")
def four_floor_places(models, tmp_path_factory):
    """Version a with four least-exposed places in a slate of 20 (two in a slate of ten)."""
    model = recsys.load_model(models["a"]).with_setting(floor_slots=4)
    return recsys.save_model(model, tmp_path_factory.mktemp("floor") / "model")


# ---------------------------------------------------------------------------------- serving
@pytest.fixture(scope="module")
def rec(models):
    return Recommender.load(models["a"])


@pytest.fixture(scope="module")
def client(rec):
    return TestClient(create_app(rec, admin_token=TOKEN))


@pytest.fixture
def live_dir(models, tmp_path):
    """A served directory a test may replace, corrupt or delete (starts as version a)."""
    target = tmp_path / "served"
    shutil.copytree(models["a"], target)
    return target


# ---------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="session")
def secret() -> str:
    """The prefix of every value of the sensitive attribute (``SECRET_GROUP_X``, ``_Y``)."""
    return SECRET


@pytest.fixture(scope="session")
def member() -> Callable[..., str]:
    """``member(reference, i)``: the id of row ``i`` (default 0) of the reference model."""
    return _member


@pytest.fixture(scope="session")
def replace_dir() -> Callable[[Path, Path], None]:
    """``replace_dir(src, target)``: swap a model directory into place (see ``_replace_dir``)."""
    return _replace_dir


@pytest.fixture(scope="session")
def capacity_of() -> Callable[[Path, pd.Series], np.ndarray]:
    """``capacity_of(model_dir, shown)``: the capacity of each member in ``shown``'s index."""
    return _capacity_of


def _member(reference, i: int = 0) -> str:
    return str(reference.network_.member_ids[i])


def _replace_dir(src: Path, target: Path) -> None:
    """Swap a model directory into place the way save_model does (rename, never a half-written
    tree).
    """
    tmp = target.with_name(target.name + ".new")
    shutil.copytree(src, tmp)
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _capacity_of(model_dir: Path, shown: pd.Series) -> np.ndarray:
    model = recsys.load_model(model_dir)
    net = model.network_
    return model.slate_capacity(net, n_slates=net.n_members, k=20)[net.rows_of(list(shown.index))]
