"""The in-process API and the HTTP contract: slates with reasons, batches, cold start, health,
and every error as JSON with a clear message."""

from __future__ import annotations

import json
import time

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
)
from serving.app import MAX_EXCLUDE, create_app


# ---------------------------------------------------------------------------------- in-process API
def test_rank_returns_the_models_slate_with_reasons(rec, reference, member):
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


def test_rank_json_is_the_slate_document(rec, reference, member):
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


def test_exclude_filters_and_keeps_the_slate_full(rec, reference, member):
    who = member(reference, 5)
    full = rec.rank(who, k=8)
    dropped = [i.member_id for i in full.introductions[:3]]
    slate = rec.rank(who, k=5, exclude=dropped + ["nobody-at-all"])
    got = [i.member_id for i in slate.introductions]
    assert not set(got) & set(dropped)
    assert len(got) == 5
    assert got[:2] == [i.member_id for i in full.introductions[3:5]]


def test_rank_batch_matches_single_ranking(rec, reference, member):
    ids = [member(reference, i) for i in (0, 7, 7, 42)]
    slates = rec.rank_batch(ids, k=6)
    assert [s.member_id for s in slates] == ids
    for s in slates:
        assert s.introductions == rec.rank(s.member_id, k=6).introductions
    assert rec.rank_batch([ids[0], "ghost", ids[1]], k=3, on_unknown="skip")[1].member_id == ids[1]
    with pytest.raises(UnknownMemberError, match="'ghost'"):
        rec.rank_batch([ids[0], "ghost"], k=3)
    assert rec.rank_batch([], k=3) == []


def test_unknown_member_and_bad_k(rec, reference, member):
    with pytest.raises(UnknownMemberError, match="unknown member 'nobody'"):
        rec.rank("nobody")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            rec.rank(member(reference), k=bad)


def test_cold_start_proposes_members_who_share_the_interests(rec, reference):
    net = reference.network_
    # the member's rarest four: interests held by over 5% of members (max_df) propose nobody
    holders = net.member_interests.getnnz(axis=0)
    rarest = sorted(net.member_interests[11].indices, key=lambda c: holders[c])[:4]
    interests = [str(x) for x in net.interest_names[rarest]]
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


# ---------------------------------------------------------------------------------- HTTP contract
def test_get_introductions(client, reference, rec, member):
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


def test_get_with_exclude(client, reference, member):
    who = member(reference, 2)
    first = client.get(f"/v1/members/{who}/introductions", params={"k": 3}).json()["introductions"]
    skip = ",".join(i["member_id"] for i in first)
    again = client.get(
        f"/v1/members/{who}/introductions", params={"k": 3, "exclude": skip}
    ).json()["introductions"]
    assert not {i["member_id"] for i in again} & {i["member_id"] for i in first}


def test_batch(client, reference, member):
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
