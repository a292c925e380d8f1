"""The precomputed slate table: the batch assignment with capacity held across every slate,
built in the background for the first version and before the swap for a new one, and cut to fit
in memory."""

from __future__ import annotations

import logging
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import recsys
from serving import Recommender, _precompute
from serving.app import create_app


def test_precompute_must_be_a_count_or_all(models):
    with pytest.raises(ValueError, match="precompute must be"):
        Recommender(models["a"], precompute=-1)
    with pytest.raises(ValueError, match="precompute must be"):
        Recommender(models["a"], precompute="most")


def test_a_table_larger_than_half_the_memory_is_cut_to_fit(monkeypatch, caplog):
    monkeypatch.setattr(
        _precompute, "_memory_bytes", lambda: 2 * 100 * _precompute.TABLE_BYTES_PER_SLATE
    )  # room for 100 slates
    with caplog.at_level(logging.WARNING, logger="serving"):
        assert _precompute.table_size(500, "all", 20) == 100
    assert "precomputing the 100 best-connected members' slates instead" in caplog.text
    assert _precompute.table_size(500, 50, 20) == 50


def test_precomputed_table_is_the_batch_assignment_and_answers_every_member(
    capacity_one, reference, capacity_of
):
    rec = Recommender.load(capacity_one, precompute="all", precompute_k=5, warm_subprocess_min=1)
    deadline = time.time() + 120
    while rec.status()["precompute"]["state"] not in ("done",) and time.time() < deadline:
        assert not rec.status()["precompute"]["state"].startswith(("failed", "stopped")), (
            rec.status()["precompute"]
        )
        time.sleep(0.2)
    status = rec.status()
    n = reference.network_.n_members
    assert status["precompute"] == {
        **status["precompute"],
        "state": "done",
        "slates": n,
        "of": n,
        "k": 5,
    }
    # the table is rank_batch over the best-connected members first: capacity held across all
    # slates
    model = recsys.load_model(capacity_one)
    rows = np.argsort(-np.diff(model.network_.adjacency.indptr), kind="stable")
    ids, _ = model.rank_batch(rows, k=5)
    names = model.network_.member_ids
    before = rec.status()["cache"]
    for j in range(0, n, 37):
        got = [i.member_id for i in rec.rank(str(names[rows[j]]), k=5).introductions]
        assert got == [str(names[o]) for o in ids[j] if o >= 0]
    after = rec.status()["cache"]
    assert after["misses"] == before["misses"] and after["hits"] > before["hits"]
    placed = pd.Series(names[ids[ids >= 0]], dtype=object).value_counts()
    cap = capacity_of(capacity_one, placed)
    assert (placed.to_numpy() <= cap).all()  # the batch held every capacity
    assert rec.status()["inbound"]["members_at_capacity"] == (placed.to_numpy() == cap).sum()


def test_a_new_versions_table_is_built_before_it_serves(
    capacity_one, reference, tmp_path, member, replace_dir
):
    live = tmp_path / "served"
    shutil.copytree(capacity_one, live)
    rec = Recommender.load(live, precompute="all", precompute_k=5)
    first = rec.model_version
    replace_dir(
        recsys.save_model(recsys.load_model(capacity_one), tmp_path / "v2", metadata={"v": 2}),
        live,
    )
    assert rec.reload().swapped and rec.model_version != first
    status = rec.status()
    n = reference.network_.n_members
    assert status["precompute"]["state"] == "done" and status["precompute"]["slates"] == n
    assert status["next_version"] is None and status["cache"]["size"] >= n
    before = status["cache"]["misses"]
    rec.rank(member(reference, 7), k=5)
    assert (
        rec.status()["cache"]["misses"] == before
    )  # answered from the table the moment it served


def test_readyz_says_warming_until_the_table_is_built(capacity_one):
    rec = Recommender.load(capacity_one, precompute="all", precompute_k=5)
    c = TestClient(create_app(rec))
    first = c.get("/readyz")
    assert (
        first.status_code == 503
        and first.json()["status"] == "warming"
        and first.json()["model_version"]
    )
    assert (
        c.get("/v1/members/u001/introductions?k=5").status_code == 200
    )  # answered meanwhile, ranked on request
    deadline = time.time() + 120
    while c.get("/readyz").status_code != 200 and time.time() < deadline:
        time.sleep(0.2)
    ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and ready["precompute"]["state"] == "done"
