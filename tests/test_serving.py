"""Serving: the in-process Recommender and the HTTP service — contract, errors, hot reload,
fuzzing, privacy.

One small model is trained per module on a synthetic network whose sensitive attribute holds
distinctive strings (``SECRET_GROUP_*``): no response, log line or saved file may ever show them.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import recsys
from serving import (
    Introduction,
    ModelNotLoadedError,
    Reasons,
    Recommender,
    Slate,
    UnknownInterestsError,
    UnknownMemberError,
    _precompute,
)
from serving._capacity import DecayingInboundCounter, InboundLimit
from serving.app import MAX_EXCLUDE, create_app

SECRET = "SECRET_GROUP"
TOKEN = "test-admin-token"


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def secret_network():
    """The synthetic network with its sensitive column relabelled to distinctive strings."""
    tables = recsys.generate_tables(500, seed=1)
    members = tables["members"].copy()
    members["gender"] = members["gender"].map({"a": f"{SECRET}_X", "b": f"{SECRET}_Y"})
    return recsys.network_from_frames(
        members, tables["interests"], tables["connections"], sensitive_attributes=("gender",)
    )


@pytest.fixture(scope="module")
def models(secret_network, tmp_path_factory):
    """Two versions over the same members: ``a`` (re-ranked) and ``b`` (acceptance score only),
    saved once each.
    """
    root = tmp_path_factory.mktemp("serving-models")
    model = recsys.IntroductionRecommender(pool_size=60, als_iterations=3).fit(secret_network)
    a = recsys.save_model(model, root / "a")
    model.set_params(rerank=False)  # a second version that ranks differently, without a second fit
    b = recsys.save_model(model, root / "b")
    return {"a": a, "b": b, "root": root}


@pytest.fixture(scope="module")
def reference(models):
    """The library's own answers for version a."""
    return recsys.load_model(models["a"])


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


def member(reference, i: int = 0) -> str:
    return str(reference.network_.member_ids[i])


def replace_dir(src: Path, target: Path) -> None:
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


# ---------------------------------------------------------------------------------- in-process API
def test_rank_returns_the_models_slate_with_reasons(rec, reference):
    row = 3
    # the last places of a fresh slate go to the least exposed, by the service's counts when it
    # ranked
    _, exposure = rec._current().inbound.state(time.time())
    slate = rec.rank(member(reference, row), k=10)
    ids, scores = reference.rank([row], k=10, exposure=exposure)
    expected = [str(reference.network_.member_ids[i]) for i in ids[0] if i >= 0]
    assert isinstance(slate, Slate) and slate.member_id == member(reference, row)
    assert [i.member_id for i in slate.introductions] == expected
    assert [i.score for i in slate.introductions] == pytest.approx(
        scores[0][: len(expected)], abs=1e-5
    )
    assert slate.model_version == rec.model_version and len(slate.model_version) == 12
    explained = reference.explain(row, ids[0][ids[0] >= 0])
    for intro, raw in zip(slate.introductions, explained):
        assert isinstance(intro, Introduction) and isinstance(intro.reasons, Reasons)
        assert list(intro.reasons.shared_interests) == raw["shared_interests"]
        assert list(intro.reasons.mutual_contacts) == raw["mutual_contacts"]
        assert intro.reasons.bridges_communities == raw["bridges_communities"]
        assert intro.reasons.summary == raw["summary"] == recsys.summarize_reasons(raw)
    with pytest.raises(AttributeError):
        slate.introductions[0].score = 1.0  # frozen


def test_rank_json_is_the_slate_document(rec, reference):
    who = member(reference, 8)
    slate = rec.rank(who, k=7, exclude=["u010"])
    assert json.loads(rec.rank_json(who, k=7, exclude=["u010"])) == slate.to_dict()
    assert (
        rec.rank_json(member(reference, 9), k=3, cached_only=True) is None
    )  # never ranked: not cached
    rec.rank(member(reference, 9), k=3)
    assert (
        json.loads(rec.rank_json(member(reference, 9), k=3, cached_only=True))
        == rec.rank(member(reference, 9), k=3).to_dict()
    )


def test_exclude_filters_and_keeps_the_slate_full(rec, reference):
    who = member(reference, 5)
    full = rec.rank(who, k=8)
    dropped = [i.member_id for i in full.introductions[:3]]
    slate = rec.rank(who, k=5, exclude=dropped + ["nobody-at-all"])
    got = [i.member_id for i in slate.introductions]
    assert not set(got) & set(dropped)
    assert len(got) == 5
    assert got[:2] == [i.member_id for i in full.introductions[3:5]]


def test_rank_batch_matches_single_ranking(rec, reference):
    ids = [member(reference, i) for i in (0, 7, 7, 42)]
    slates = rec.rank_batch(ids, k=6)
    assert [s.member_id for s in slates] == ids
    for s in slates:
        assert s.introductions == rec.rank(s.member_id, k=6).introductions
    assert rec.rank_batch([ids[0], "ghost", ids[1]], k=3, on_unknown="skip")[1].member_id == ids[1]
    with pytest.raises(UnknownMemberError, match="'ghost'"):
        rec.rank_batch([ids[0], "ghost"], k=3)
    assert rec.rank_batch([], k=3) == []


def test_unknown_member_and_bad_k(rec, reference):
    with pytest.raises(UnknownMemberError, match="unknown member 'nobody'"):
        rec.rank("nobody")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            rec.rank(member(reference), k=bad)


def test_cold_start_proposes_members_who_share_the_interests(rec, reference):
    net = reference.network_
    row = 11
    interests = [str(x) for x in net.interest_names[net.member_interests[row].indices[:4]]]
    slate = rec.rank_cold_start(interests + ["no-such-interest"], k=5)
    assert slate.member_id is None and 0 < len(slate.introductions) <= 5
    for intro in slate.introductions:
        theirs = set(
            net.interest_names[
                net.member_interests[int(net.rows_of([intro.member_id])[0])].indices
            ]
        )
        assert intro.reasons.n_shared_interests >= 1
        assert set(intro.reasons.shared_interests) <= theirs & set(interests)
    with pytest.raises(UnknownInterestsError, match="none of the interests"):
        rec.rank_cold_start(["no-such-interest"], k=5)


def test_concurrent_ranking_during_reloads_sees_whole_versions(models, live_dir):
    """Many threads rank while the model flips between two versions: every slate is one version's,
    whole.
    """
    expected = {}
    for name in ("a", "b"):
        r = Recommender.load(models[name], cache_size=0)
        expected[r.model_version] = {
            m: r.rank(m, k=5).introductions for m in ("u000", "u001", "u002")
        }
    rec = Recommender.load(live_dir, cache_size=50)
    stop = time.perf_counter() + 3.0

    def ranker(m: str) -> int:
        n = 0
        while time.perf_counter() < stop:
            slate = rec.rank(m, k=5)
            assert slate.introductions == expected[slate.model_version][m]
            n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ranker, m) for m in ("u000", "u001", "u002")]
        flips = 0
        while time.perf_counter() < stop - 0.5:
            replace_dir(models["b" if flips % 2 == 0 else "a"], live_dir)
            assert rec.reload().swapped
            flips += 1
        assert all(f.result() > 0 for f in futures)
    assert flips >= 2


# ---------------------------------------------------------------------------------- HTTP contract
def test_get_introductions(client, reference, rec):
    who = member(reference, 2)
    r = client.get(f"/v1/members/{who}/introductions", params={"k": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["member_id"] == who and body["model_version"] == rec.model_version
    assert 0 < len(body["introductions"]) <= 4
    first = body["introductions"][0]
    assert set(first) == {"member_id", "score", "reasons"}
    assert set(first["reasons"]) == {
        "shared_interests",
        "n_shared_interests",
        "mutual_contacts",
        "n_mutual_contacts",
        "bridges_communities",
        "summary",
    }
    assert [i["member_id"] for i in body["introductions"]] == [
        i.member_id for i in rec.rank(who, k=4).introductions
    ]
    default = client.get(f"/v1/members/{who}/introductions").json()
    assert len(default["introductions"]) == 20


def test_get_with_exclude(client, reference):
    who = member(reference, 2)
    first = client.get(f"/v1/members/{who}/introductions", params={"k": 3}).json()["introductions"]
    skip = ",".join(i["member_id"] for i in first)
    again = client.get(
        f"/v1/members/{who}/introductions", params={"k": 3, "exclude": skip}
    ).json()["introductions"]
    assert not {i["member_id"] for i in again} & {i["member_id"] for i in first}


def test_batch(client, reference):
    ids = [member(reference, 1), "ghost", member(reference, 9)]
    r = client.post("/v1/introductions:batch", json={"member_ids": ids, "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert [s["member_id"] for s in body["slates"]] == [ids[0], ids[2]]
    assert body["unknown_member_ids"] == ["ghost"]
    assert all(0 < len(s["introductions"]) <= 3 for s in body["slates"])


def test_cold_start_endpoint(client, reference):
    names = [str(x) for x in reference.network_.interest_names[:3]]
    r = client.post("/v1/introductions:cold-start", json={"interests": names + ["zzz"], "k": 4})
    assert r.status_code == 200 and r.json()["member_id"] is None
    assert 0 < len(r.json()["introductions"]) <= 4
    r = client.post("/v1/introductions:cold-start", json={"interests": ["zzz", "yyy"]})
    assert (
        r.status_code == 422
        and "none of the interests given ('zzz', 'yyy') is known" in r.json()["message"]
    )


def test_health_ready_and_openapi(client, rec):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["model_version"] == rec.model_version
    assert ready.json()["last_reload_error"] is None
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/members/{member_id}/introductions",
        "/v1/introductions:batch",
        "/v1/introductions:cold-start",
        "/healthz",
        "/readyz",
        "/admin/reload",
    } <= set(paths)


# ---------------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    "method, url, body, status, phrase",
    [
        (
            "get",
            "/v1/members/nobody-here/introductions",
            None,
            404,
            "unknown member 'nobody-here'",
        ),
        ("get", "/v1/members/u000/introductions?k=0", None, 422, "query.k"),
        ("get", "/v1/members/u000/introductions?k=101", None, 422, "less than or equal to 100"),
        ("get", "/v1/members/u000/introductions?k=ten", None, 422, "valid integer"),
        (
            "get",
            "/v1/members/u000/introductions?exclude="
            + ",".join(f"x{i}" for i in range(MAX_EXCLUDE + 1)),
            None,
            422,
            "at most",
        ),
        ("post", "/v1/introductions:batch", {"member_ids": []}, 422, "body.member_ids"),
        ("post", "/v1/introductions:batch", {"member_ids": ["u000"], "k": 0}, 422, "body.k"),
        ("post", "/v1/introductions:batch", {"member_ids": ["u000"], "k": "3"}, 422, "body.k"),
        ("post", "/v1/introductions:batch", {"member_ids": "u000"}, 422, "body.member_ids"),
        ("post", "/v1/introductions:batch", {"member_ids": ["u000"], "kk": 3}, 422, "body.kk"),
        (
            "post",
            "/v1/introductions:batch",
            {"member_ids": [f"u{i}" for i in range(201)]},
            422,
            "body.member_ids",
        ),
        ("post", "/v1/introductions:cold-start", {"interests": []}, 422, "body.interests"),
        ("post", "/v1/introductions:cold-start", {"k": 3}, 422, "body.interests"),
        ("get", "/v1/nothing-here", None, 404, "no such endpoint"),
        ("delete", "/healthz", None, 405, "not allowed"),
    ],
)
def test_errors_are_json_with_clear_messages(client, method, url, body, status, phrase):
    r = (
        getattr(client, method)(url, json=body)
        if body is not None
        else getattr(client, method)(url)
    )
    assert r.status_code == status, r.text
    payload = r.json()
    assert set(payload) == {"error", "message", "details"}
    assert phrase in payload["message"] or any(
        phrase in json.dumps(d) for d in payload["details"]
    ), payload


def test_malformed_json_body(client):
    r = client.post(
        "/v1/introductions:batch",
        content=b'{"member_ids": [',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_no_model_means_503_but_alive(tmp_path):
    app = create_app(tmp_path / "not-there")
    c = TestClient(app)
    assert c.get("/healthz").status_code == 200
    ready = c.get("/readyz")
    assert ready.status_code == 503
    assert (
        ready.json()["status"] == "not_ready"
        and "no model directory" in ready.json()["last_reload_error"]["message"]
    )
    for r in (
        c.get("/v1/members/u000/introductions"),
        c.post("/v1/introductions:batch", json={"member_ids": ["u000"]}),
        c.post("/v1/introductions:cold-start", json={"interests": ["topic:1"]}),
    ):
        assert r.status_code == 503 and r.json()["error"] == "not_ready", r.text
    with pytest.raises(ModelNotLoadedError):
        Recommender(tmp_path / "not-there").rank("u000")


def test_load_refuses_a_corrupt_model(models, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(models["a"], bad)
    (bad / "member_factors.npy").write_bytes(
        (bad / "member_factors.npy").read_bytes()[:-8] + b"\0" * 8
    )
    with pytest.raises(recsys.ModelFormatError, match="checksum mismatch"):
        Recommender.load(bad)


# ---------------------------------------------------------------------------------- hot reload
def test_reload_to_a_good_model_drops_the_old_cache(models, live_dir):
    rec = Recommender.load(live_dir)
    c = TestClient(create_app(rec))
    old = c.get("/v1/members/u004/introductions?k=6").json()
    assert rec.reload().swapped is False  # nothing new yet
    replace_dir(models["b"], live_dir)
    result = rec.reload()
    assert result.swapped and result.previous_version == old["model_version"]
    new = c.get("/v1/members/u004/introductions?k=6").json()
    fresh = Recommender.load(models["b"], cache_size=0).rank("u004", k=6)
    assert new["model_version"] == result.model_version != old["model_version"]
    assert [i["member_id"] for i in new["introductions"]] == [
        i.member_id for i in fresh.introductions
    ]
    assert [i["score"] for i in new["introductions"]] == [i.score for i in fresh.introductions]
    # a touched manifest with the same content is not a new version
    (live_dir / "manifest.json").touch()
    assert rec.reload().swapped is False and rec.model_version == result.model_version


@pytest.mark.parametrize("where", ["in-process", "child process"])
def test_reload_warms_the_hottest_slates_before_the_swap(models, live_dir, where, caplog):
    rec = Recommender.load(
        live_dir, warm_on_reload=5, warm_subprocess_min=2 if where == "child process" else 100
    )
    for m in ("u001", "u002", "u003"):
        rec.rank(m, k=4)
    rec.rank("u002", k=4, exclude=["u499"])  # another slate length: its own cache entry
    replace_dir(models["b"], live_dir)
    with caplog.at_level(logging.INFO, logger="serving"):
        assert rec.reload().swapped
    assert (
        f"warmed 4 slates of version {rec.model_version} "
        f"{where if where == 'in-process' else 'in a child process'}" in caplog.text
    )
    stats = rec.status()["cache"]
    assert stats["size"] == 4 and stats["hits"] == 0
    fresh = Recommender.load(models["b"], cache_size=0)
    for m in ("u001", "u002", "u003"):
        assert rec.rank(m, k=4) == fresh.rank(m, k=4)  # warmed slates are the new version's own
    assert rec.status()["cache"]["hits"] == 3


def test_reload_to_a_corrupt_model_keeps_the_old_one(models, live_dir, caplog):
    rec = Recommender.load(live_dir)
    c = TestClient(create_app(rec))
    good = rec.model_version
    replace_dir(models["b"], live_dir)
    factors = live_dir / "member_factors.npy"
    factors.write_bytes(factors.read_bytes()[:-4] + b"\x01\x02\x03\x04")
    with caplog.at_level(logging.ERROR, logger="serving"):
        result = rec.reload()
    assert not result.swapped and rec.model_version == good
    assert "checksum mismatch" in caplog.text and f"still serving version {good}" in caplog.text
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] == good
    assert "checksum mismatch" in ready.json()["last_reload_error"]["message"]
    assert c.get("/v1/members/u000/introductions?k=3").json()["model_version"] == good
    # the same broken state is not retried on every poll; a fixed model loads and clears the error
    assert rec.reload().swapped is False
    replace_dir(models["b"], live_dir)
    assert rec.reload().swapped
    assert c.get("/readyz").json()["last_reload_error"] is None


def test_reload_to_a_missing_model_keeps_the_old_one(live_dir):
    rec = Recommender.load(live_dir)
    c = TestClient(create_app(rec))
    good = rec.model_version
    shutil.rmtree(live_dir)
    assert rec.reload().swapped is False
    ready = c.get("/readyz").json()
    assert (
        ready["model_version"] == good
        and "no model directory" in ready["last_reload_error"]["message"]
    )
    assert c.get("/v1/members/u000/introductions").status_code == 200


def test_poller_follows_the_directory(models, live_dir):
    app = create_app(live_dir, poll_seconds=0.1)
    with TestClient(app) as c:  # the lifespan starts the poller
        before = c.get("/readyz").json()["model_version"]
        replace_dir(models["b"], live_dir)
        deadline = time.perf_counter() + 20
        while c.get("/readyz").json()["model_version"] == before:
            assert time.perf_counter() < deadline, "the poller did not pick up the new model"
            time.sleep(0.05)
        assert c.get("/v1/members/u000/introductions").json()["model_version"] != before


def test_admin_reload_needs_the_token(models, live_dir, monkeypatch):
    monkeypatch.delenv("PLUSONE_ADMIN_TOKEN", raising=False)
    assert TestClient(create_app(live_dir)).post("/admin/reload").status_code == 404
    monkeypatch.setenv("PLUSONE_ADMIN_TOKEN", TOKEN)
    c = TestClient(create_app(live_dir))
    assert c.post("/admin/reload").status_code == 401
    assert c.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert c.post("/admin/reload", headers=auth).json()["reloaded"] is False
    replace_dir(models["b"], live_dir)
    body = c.post("/admin/reload", headers=auth).json()
    assert body["reloaded"] is True and body["model_version"] != body["previous_version"]
    (live_dir / "acceptance.json").write_text("{}")
    r = c.post("/admin/reload", headers=auth, params={"force": True})
    assert r.status_code == 409 and "still serving" in r.json()["message"]


def test_mlflow_model_uris_and_alias_moves(models, tmp_path):
    import mlflow

    client = mlflow.MlflowClient()
    runs = {}
    for name in ("a", "b"):
        with mlflow.start_run() as run:
            # the training job logs the saved model nested inside its pyfunc model; search finds it
            mlflow.log_artifacts(str(models[name]), artifact_path="plusone/artifacts/model")
        runs[name] = run.info.run_id
    rec = Recommender.load(f"runs:/{runs['a']}/plusone")
    assert rec.model_version == Recommender.load(models["a"]).model_version
    client.create_registered_model("plusone-test")
    for name in ("a", "b"):
        client.create_model_version(
            "plusone-test", f"runs:/{runs[name]}/plusone", run_id=runs[name]
        )
    client.set_registered_model_alias("plusone-test", "champion", "1")
    rec = Recommender.load("models:/plusone-test@champion")
    assert rec.model_version == "plusone-test/1"
    assert rec.reload().swapped is False
    client.set_registered_model_alias("plusone-test", "champion", "2")
    result = rec.reload()
    assert result.swapped and rec.model_version == "plusone-test/2"
    assert rec.rank("u000", k=3).model_version == "plusone-test/2"
    assert not list(Path(tmp_path).glob("plusone-serve-*"))  # downloads are cleaned up
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        Recommender.load("models:/no-such-model@champion")


# ---------------------------------------------------------------------------------- fuzzing
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402


class _DelegateASGI:
    """Forwards to the app a fixture sets: the schema loads at import, the model is a module
    fixture.

    (``schemathesis.pytest.from_fixture`` would say this directly but fails under pytest 9.)
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


# the OpenAPI document does not depend on the model: a model-less app gives the same one
_fuzz_target = _DelegateASGI(
    create_app(Recommender("/nonexistent-model-for-the-schema"), admin_token=TOKEN)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _fuzz_target)


@pytest.fixture(scope="module")
def fuzz_app(rec):
    placeholder = _fuzz_target.app
    _fuzz_target.app = create_app(rec, admin_token=TOKEN)
    yield
    _fuzz_target.app = placeholder


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_fuzz_no_server_errors(case, fuzz_app):
    """Property-based requests from the OpenAPI document: never a 5xx, responses match the schema.

    Cold start answers 422 by contract when none of the interests is known, which random
    interests never are: there the "valid data is accepted" check does not apply.
    """
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    excluded = [positive_data_acceptance] if case.operation.path.endswith(":cold-start") else []
    case.call_and_validate(excluded_checks=excluded)


# ---------------------------------------------------------------------------------- privacy
def test_saved_model_holds_no_sensitive_values(models):
    for name in ("a", "b"):
        root = Path(models[name])
        for file in root.iterdir():
            assert SECRET.encode() not in file.read_bytes(), file
        members = pd.read_parquet(root / "members.parquet")
        assert "gender" not in members.columns
        assert not members.astype(str).apply(lambda col: col.str.contains(SECRET)).any().any()
        assert SECRET not in (root / "manifest.json").read_text()


def test_no_response_or_log_line_carries_a_sensitive_attribute(
    models, live_dir, reference, caplog
):
    caplog.set_level(logging.DEBUG)
    rec = Recommender.load(
        live_dir, warm_subprocess_min=10_000
    )  # warm in-process: its log lines are captured here
    c = TestClient(create_app(rec, admin_token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bodies = []
    for i in range(0, 500, 25):
        bodies.append(
            c.get(f"/v1/members/{member(reference, i)}/introductions", params={"k": 20}).text
        )
    names = [str(x) for x in reference.network_.interest_names[:20]]
    bodies += [
        c.post(
            "/v1/introductions:batch",
            json={"member_ids": [member(reference, i) for i in range(50)], "k": 10},
        ).text,
        c.post("/v1/introductions:cold-start", json={"interests": names}).text,
        c.get("/v1/members/ghost/introductions").text,
        c.get(
            f"/v1/members/{SECRET}_X/introductions"
        ).text,  # the caller's own words may come back; checked below
        c.get("/readyz").text,
        c.get("/openapi.json").text,
    ]
    replace_dir(models["b"], live_dir)
    bodies.append(c.post("/admin/reload", headers=auth).text)
    (live_dir / "acceptance.json").write_text("{}")
    bodies.append(c.post("/admin/reload", headers=auth, params={"force": True}).text)
    bodies.append(c.get("/readyz").text)
    leaked = [b for b in bodies if SECRET in b.replace(f"'{SECRET}_X'", "")]
    assert not leaked
    assert all(SECRET not in r.getMessage().replace(f"/{SECRET}_X/", "") for r in caplog.records)
    assert "gender" not in json.dumps([json.loads(b) for b in bodies])


# ---------------------------------------------------------------------------------- capacity and
# the precomputed table
@pytest.fixture(scope="module")
def capacity_one(models, tmp_path_factory):
    """Version a with a capacity of one slate per member (capacity_multiple × k = 1)."""
    model = recsys.load_model(models["a"])
    model.set_params(capacity_multiple=0.05)
    model.rerank_params_["capacity_multiple"] = 0.05  # the fitted (tuned) value is the one used
    return recsys.save_model(model, tmp_path_factory.mktemp("capacity") / "model")


def _appearances(rec: Recommender, members: list[str], k: int) -> pd.Series:
    shown = [i.member_id for m in members for i in rec.rank(m, k=k).introductions]
    return pd.Series(shown, dtype=object).value_counts()


def _capacity_of(model_dir: Path, shown: pd.Series) -> np.ndarray:
    model = recsys.load_model(model_dir)
    net = model.network_
    return model.slate_capacity(net, n_slates=net.n_members, k=20)[net.rows_of(list(shown.index))]


def test_serving_holds_recipient_capacity_with_a_decaying_counter(capacity_one, reference):
    members = [str(m) for m in reference.network_.member_ids[:200]]
    free = _appearances(
        Recommender.load(capacity_one, cache_size=0, capacity_half_life=None), members, k=5
    )
    assert (
        free.to_numpy() > _capacity_of(capacity_one, free)
    ).sum() > 10  # without the counter many are over
    rec = Recommender.load(capacity_one, cache_size=0)
    held = _appearances(rec, members, k=5)
    cap = _capacity_of(capacity_one, held)
    assert (
        held.to_numpy() <= cap
    ).all()  # one fresh slate each, a mentor's `capacity` column where given
    assert rec.status()["inbound"]["members_at_capacity"] == (held.to_numpy() == cap).sum() > 100
    # a cached slate shown again is not counted again
    cached = Recommender.load(capacity_one)
    first = cached.rank(members[0], k=5)
    assert cached.rank(members[0], k=5) == first and cached.status()["inbound"][
        "members_at_capacity"
    ] == len(first.introductions)


def test_precomputed_table_is_the_batch_assignment_and_answers_every_member(
    capacity_one, reference
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
    cap = _capacity_of(capacity_one, placed)
    assert (placed.to_numpy() <= cap).all()  # the batch held every capacity
    assert rec.status()["inbound"]["members_at_capacity"] == (placed.to_numpy() == cap).sum()


def test_precompute_must_be_a_count_or_all(models):
    with pytest.raises(ValueError, match="precompute must be"):
        Recommender(models["a"], precompute=-1)
    with pytest.raises(ValueError, match="precompute must be"):
        Recommender(models["a"], precompute="most")


def test_inbound_counter_counts_each_showing_and_halves_every_half_life():
    counter = DecayingInboundCounter(np.array([2, 2, 5]), half_life=10.0)
    counter.record(np.array([0, 0, 1]), now=100.0)  # member 0 shown twice, member 1 once
    assert counter.over(np.array([0, 1, 2]), now=100.0).tolist() == [True, False, False]
    assert counter.over_all(100.0).tolist() == [True, False, False]
    # one half-life later member 0's count is 1: below capacity again
    assert counter.over_all(110.0).tolist() == [False, False, False]
    counter.record(np.array([1]), now=110.0)  # 0.5 decayed + 1
    np.testing.assert_allclose(counter.counts[:2], [2.0, 1.5])
    assert counter.over(np.array([1]), now=110.0)[0]  # one more showing would take 1.5 above 2
    assert not counter.over(np.array([1]), now=120.0)[0]  # 0.75: room for one


def test_a_new_version_inherits_live_counts_but_not_the_old_table(capacity_one):
    model = recsys.load_model(capacity_one)
    old, new = InboundLimit(model, 86_400.0), InboundLimit(model, 86_400.0)
    now = time.time()
    old.record(np.array([1, 2, 2]), now)  # shown live
    old.record(np.array([3, 4]), now, planned=True)  # in the old version's table
    assert old.unavailable(now)[[1, 2, 3, 4, 5]].tolist() == [True, True, True, True, False]
    new.carry_over(old)
    assert new.unavailable(now)[[1, 2, 3, 4, 5]].tolist() == [True, True, False, False, False]
    assert new.planned.sum() == 0 and new.stats()["members_at_capacity"] == 2


def test_a_new_versions_table_is_built_before_it_serves(capacity_one, reference, tmp_path):
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


def test_opt_in_bounds_on_a_consented_attribute_keep_only_bare_codes(
    secret_network, models, tmp_path
):
    opted = recsys.IntroductionRecommender(
        pool_size=60, als_iterations=3, bound_attribute="gender", bound_tolerance=0.05
    ).fit(secret_network)
    path = recsys.save_model(opted, tmp_path / "opted")
    assert (path / "bound_groups.npy").is_file() and not (
        Path(models["a"]) / "bound_groups.npy"
    ).exists()
    for f in path.iterdir():
        assert SECRET.encode() not in f.read_bytes(), f.name  # codes only: no value, no label
    loaded = recsys.load_model(path)
    np.testing.assert_array_equal(loaded.bound_groups_, opted.bound_groups_)
    # the slates' gender mix follows the population's more closely than the default's
    gender = secret_network.sensitive["gender"].fillna("undisclosed").to_numpy(dtype=object)
    population = pd.Series(gender).value_counts(normalize=True)
    default = recsys.load_model(models["a"])
    rows = np.arange(secret_network.n_members)

    def gap(model) -> float:
        ids, _ = model.rank(rows, k=10)
        shares = pd.Series(gender[ids[ids >= 0]]).value_counts(normalize=True)
        return float((shares.reindex(population.index, fill_value=0) - population).abs().sum())

    assert gap(loaded) < gap(default)
    slate = Recommender.load(path).rank("u003", k=5)
    assert SECRET not in json.dumps(slate.to_dict())


def test_opt_in_needs_a_sensitive_attribute(secret_network):
    with pytest.raises(
        ValueError, match="bound_attribute 'region' is not one of the data's sensitive attributes"
    ):
        recsys.IntroductionRecommender(
            pool_size=30, als_iterations=2, bound_attribute="region"
        ).fit(secret_network)


def test_a_table_larger_than_half_the_memory_is_cut_to_fit(monkeypatch, caplog):
    monkeypatch.setattr(
        _precompute, "_memory_bytes", lambda: 2 * 100 * _precompute.TABLE_BYTES_PER_SLATE
    )  # room for 100 slates
    with caplog.at_level(logging.WARNING, logger="serving"):
        assert _precompute.table_size(500, "all", 20) == 100
    assert "precomputing the 100 best-connected members' slates instead" in caplog.text
    assert _precompute.table_size(500, 50, 20) == 50


@pytest.fixture(scope="module")
def four_floor_places(models, tmp_path_factory):
    """Version a with four least-exposed places in a slate of 20 (two in a slate of ten)."""
    model = recsys.load_model(models["a"])
    model.rerank_params_["floor_slots"] = 4
    return recsys.save_model(model, tmp_path_factory.mktemp("floor") / "model")


@pytest.mark.parametrize("where", ["in-process", "child process"])
def test_warmed_slates_fill_their_last_places_from_the_carried_counts(
    four_floor_places, tmp_path, where
):
    live = tmp_path / "served"
    shutil.copytree(four_floor_places, live)
    rec = Recommender.load(
        live, warm_on_reload=5, warm_subprocess_min=1 if where == "child process" else 10_000
    )
    reference = recsys.load_model(four_floor_places)
    who = member(reference, 7)
    first = [
        i.member_id for i in rec.rank(who, k=10).introductions
    ]  # its members are shown once each
    (live / "manifest.json").write_text(
        (live / "manifest.json").read_text() + " "
    )  # same model, a new version
    assert (
        rec.reload().swapped and rec.status()["cache"]["size"] == 1
    )  # the slate was warmed, not ranked on request
    _, exposure = rec._current().inbound.state(time.time())
    row = reference.network_.rows_of([who])
    want, _ = reference.rank(row, k=10, exposure=exposure)
    got = [i.member_id for i in rec.rank(who, k=10).introductions]
    assert got == [str(reference.network_.member_ids[o]) for o in want[0] if o >= 0]
    assert (
        got[:8] == first[:8] and got[8:] != first[8:]
    )  # the last places went to members not shown yet
