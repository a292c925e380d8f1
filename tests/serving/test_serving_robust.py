"""The service against bad input and a source that misbehaves: what the directory source
copies, a failed version not retried until it changes, messages that name the source and not a
private copy, ids with "/", bounded k, one reload at a time, cold start without interests, and
the PLUSONE_* environment."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import recsys
from serving import ColdStartUnavailableError, Recommender
from serving._sources import DirectorySource
from serving.app import check_environment, create_app

TOKEN = "test-admin-token"


def _count_fetches(rec: Recommender) -> list[int]:
    calls = [0]
    fetch = rec._source.fetch

    def counted(workdir):
        calls[0] += 1
        return fetch(workdir)

    rec._source.fetch = counted
    return calls


def _break(model_dir) -> None:
    """A new manifest whose checksum for one file is wrong (a new, failing version)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["files"]["member_factors.npy"] = "0" * 64
    (model_dir / "manifest.json").write_text(json.dumps(manifest))


def test_a_failed_version_is_not_retried_until_the_source_changes(models, live_dir, replace_dir):
    rec = Recommender.load(live_dir, cache_size=0, warm_on_reload=0)
    fetches = _count_fetches(rec)
    for _ in range(3):  # an unchanged source is not fetched again (its stat is the same)
        assert not rec.reload().swapped
    assert fetches[0] == 0
    _break(live_dir)
    assert not rec.reload().swapped and rec.last_reload_error is not None
    for _ in range(3):
        assert not rec.reload().swapped
    assert fetches[0] == 1, "a failed version was retried without a change"
    replace_dir(models["b"], live_dir)
    assert rec.reload().swapped and rec.last_reload_error is None


def test_messages_name_the_source_not_a_private_copy(models, live_dir):
    _break(live_dir)
    app = create_app(live_dir)
    with TestClient(app) as c:
        body = c.get("/readyz").json()
        assert body["status"] == "not_ready"
        message = body["last_reload_error"]["message"]
        assert str(live_dir) in message and "plusone-serve-" not in message, message
        slate = c.get("/v1/members/u000/introductions")
        assert slate.status_code == 503 and "plusone-serve-" not in slate.json()["message"]


def test_a_published_model_is_followed_save_after_save(models, tmp_path):
    path = recsys.save_model(recsys.load_model(models["a"]), tmp_path / "model")
    rec = Recommender.load(path, cache_size=0, warm_on_reload=0)
    fetches = _count_fetches(rec)
    assert not rec.reload().swapped and fetches[0] == 0
    recsys.save_model(recsys.load_model(models["b"]), path)
    assert rec.reload().swapped and fetches[0] == 1
    assert not rec.reload().swapped and fetches[0] == 1


def test_the_directory_source_copies_only_listed_regular_files(models, live_dir, tmp_path):
    big = tmp_path / "big"
    (big / "deep").mkdir(parents=True)
    for i in range(50):
        (big / "deep" / f"f{i}").write_text("x")
    os.symlink(big, live_dir / "extra-link")  # unlisted: never followed
    (live_dir / "notes.txt").write_text("unlisted")
    work = tmp_path / "work"
    work.mkdir()
    copy, _ = DirectorySource(live_dir).fetch(work)
    listed = set(json.loads((live_dir / "manifest.json").read_text())["files"])
    assert {p.name for p in copy.iterdir()} == listed | {"manifest.json"}
    # a listed file that is a link is refused, not followed
    work2 = tmp_path / "work2"
    work2.mkdir()
    (live_dir / "member_factors.npy").unlink()
    os.symlink(big, live_dir / "member_factors.npy")
    with pytest.raises(recsys.ModelFormatError, match="member_factors.npy: is a symbolic link"):
        DirectorySource(live_dir).fetch(work2)


def test_k_and_arguments_are_bounded_in_process(rec, member, reference):
    m = member(reference)
    with pytest.raises(ValueError, match="at most 1000"):
        rec.rank(m, k=1_000_000)
    with pytest.raises(ValueError, match="at most 1000"):
        rec.rank_batch([m], k=10**9)
    with pytest.raises(ValueError, match="at most 1000"):
        Recommender("nowhere", precompute_k=10**6)
    with pytest.raises(TypeError, match="not one string"):
        rec.rank(m, exclude=m)
    with pytest.raises(TypeError, match="not one string"):
        rec.rank_batch(m)
    with pytest.raises(TypeError, match="not one string"):
        rec.rank_cold_start("topic:1")
    long_id = "x" * 10_000
    with pytest.raises(Exception) as caught:
        rec.rank(long_id)
    assert len(str(caught.value)) < 200  # the caller's value is not echoed whole


def test_admin_reload_does_not_queue(rec):
    c = TestClient(create_app(rec, admin_token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert rec._reload_lock.acquire()
    try:  # a reload is running: the request is answered at once
        r = c.post("/admin/reload", headers=auth)
        assert r.status_code == 409 and "already running" in r.json()["message"]
    finally:
        rec._reload_lock.release()
    assert c.post("/admin/reload", headers=auth).status_code == 200


@pytest.fixture(scope="module")
def slash_model(tmp_path_factory):
    """Members whose ids hold "/", and no interest-based candidates (no cold start)."""
    rng = np.random.default_rng(0)
    ids = [f"team/{i}" for i in range(30)]
    pairs = {tuple(sorted(rng.choice(30, 2, replace=False))) for _ in range(90)}
    network = recsys.network_from_frames(
        pd.DataFrame({"member_id": ids}),
        pd.DataFrame({"member_id": ids, "interest": [f"t{i % 4}" for i in range(30)]}),
        pd.DataFrame([(ids[a], ids[b]) for a, b in pairs], columns=["member_a", "member_b"]),
    )
    model = recsys.IntroductionRecommender(pool_size=20, als_iterations=2, n_interests=0)
    return recsys.save_model(model.fit(network), tmp_path_factory.mktemp("slash") / "model")


def test_ids_with_a_slash_are_served(slash_model):
    c = TestClient(create_app(slash_model))
    for path in ("/v1/members/team%2F3/introductions", "/v1/members/team/3/introductions"):
        r = c.get(path, params={"k": 3})
        assert r.status_code == 200 and r.json()["member_id"] == "team/3", r.text
    r = c.get("/v1/members/team%2F3/introductions-to-make")
    assert r.status_code in (200, 422) and r.json().get("member_id", "team/3") == "team/3"
    assert c.get("/v1/members/team%2F99/introductions").status_code == 404


def test_cold_start_without_interest_candidates_is_501(slash_model):
    rec = Recommender.load(slash_model)
    with pytest.raises(ColdStartUnavailableError):
        rec.rank_cold_start(["t1"])
    r = TestClient(create_app(rec)).post(
        "/v1/introductions:cold-start", json={"interests": ["t1"]}
    )
    assert r.status_code == 501 and "Retry-After" not in r.headers


def test_openapi_says_when_cold_start_is_a_422(client):
    route = client.get("/openapi.json").json()["paths"]["/v1/introductions:cold-start"]["post"]
    assert "none of the interests is known" in route["responses"]["422"]["description"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PLUSONE_CACHE_SIZE", "lots"),
        ("PLUSONE_WARM_ON_RELOAD", "-3"),
        ("PLUSONE_PRECOMPUTE", "half"),
        ("PLUSONE_WORKERS", "0"),
        ("PLUSONE_POLL_SECONDS", "nan"),
    ],
)
def test_a_bad_environment_value_is_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        check_environment()


def test_concurrent_admin_reloads_do_not_pile_up(rec):
    c = TestClient(create_app(rec, admin_token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    codes: list[int] = []

    def ask() -> None:
        codes.append(c.post("/admin/reload", headers=auth, params={"force": True}).status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) <= {200, 409} and 200 in codes
