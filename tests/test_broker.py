"""Broker introductions (issue 7): pairs of a member's own contacts to introduce to each other.

One small model per module, trained on a synthetic network whose sensitive attribute holds
distinctive strings (``SECRET_GROUP_*``) and whose members carry capacity, opt-out and pledge
columns; two extra members have one contact and none. The library ranking is checked against a
plain Python reference (itertools over each broker's contacts, the generic pair features, a
greedy pass for capacity); the CLI and the HTTP endpoint against the library.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import recsys
from cli import main
from recsys import (
    BrokerRanker,
    TooFewContactsError,
    assign_pairs,
    evaluate_broker,
    fill_pledges,
    rank_introductions_to_make,
)
from serving import Recommender
from serving.app import create_app

SECRET = "SECRET_GROUP"


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tables():
    t = recsys.generate_tables(400, seed=5)
    members = t["members"].copy()
    members["gender"] = members["gender"].map({"a": f"{SECRET}_X", "b": f"{SECRET}_Y"})
    rng = np.random.default_rng(0)
    n = len(members)
    members["capacity"] = np.where(
        rng.random(n) < 0.2, 1.0, np.nan
    )  # a fifth can take one introduction
    members.loc[rng.choice(n, 5, replace=False), "capacity"] = 0.0
    members["open_to_intros"] = rng.random(n) > 0.03
    members["pledge_per_month"] = np.where(rng.random(n) < 0.1, rng.integers(1, 6, n), np.nan)
    some = members["member_id"].iloc[0]
    extra = pd.DataFrame(
        {"member_id": ["lonely", "isolated"], "gender": [f"{SECRET}_X", f"{SECRET}_Y"]}
    )
    members = pd.concat([members, extra], ignore_index=True)
    connections = pd.concat(
        [t["connections"], pd.DataFrame({"member_a": ["lonely"], "member_b": [some]})],
        ignore_index=True,
    )
    return {"members": members, "interests": t["interests"], "connections": connections}


@pytest.fixture(scope="module")
def network(tables):
    return recsys.network_from_frames(
        tables["members"],
        tables["interests"],
        tables["connections"],
        sensitive_attributes=("gender",),
    )


@pytest.fixture(scope="module")
def model(network):
    return recsys.IntroductionRecommender(pool_size=60, als_iterations=3, random_state=0).fit(
        network
    )


@pytest.fixture(scope="module")
def ranker(model):
    return BrokerRanker().fit(model)


@pytest.fixture(scope="module")
def brokers(ranker):
    return np.flatnonzero(ranker.degrees_ >= 2)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return recsys.save_model(model, tmp_path_factory.mktemp("broker-model") / "model")


@pytest.fixture(scope="module")
def client(saved):
    return TestClient(create_app(Recommender.load(saved)))


def _row(network, member_id):
    return int(network.rows_of([member_id])[0])


# ---------------------------------------------------------------------------------- library
def test_pairs_are_unconnected_contacts_once_each(model, ranker, brokers):
    pairs, scores = ranker.rank(brokers, k=10, shared_capacity=False)
    assert pairs.shape == (len(brokers), 10, 2) and pairs.dtype == np.int32
    assert scores.shape == (len(brokers), 10) and scores.dtype == np.float32
    adjacency = model.network_.adjacency
    filled = 0
    for c, row_pairs, row_scores in zip(brokers, pairs, scores):
        valid = row_pairs[:, 0] >= 0
        assert (np.isfinite(row_scores) == valid).all()
        assert not valid[np.argmin(valid) :].any() or valid.all()  # padding only at the end
        assert (np.diff(row_scores[valid]) <= 0).all()  # best first
        contacts = set(adjacency[c].indices.tolist())
        seen = set()
        for a, b in row_pairs[valid]:
            assert a < b and a in contacts and b in contacts and c not in (a, b)
            assert adjacency[a, b] == 0
            assert (a, b) not in seen  # (a, b) and (b, a) are one pair, and a < b
            seen.add((a, b))
        filled += int(valid.sum())
    assert filled > 5 * len(brokers)


def test_block_path_equals_generic_features_and_scores(model, ranker, brokers):
    for chunk in (
        brokers[:1],
        brokers[:40],
    ):  # one broker (dense blocks) and many (block-diagonal)
        a, b, _, fast = ranker._pairs_and_features(chunk)
        slow = model.features_.transform(a, b)
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            ranker.acceptance_scores(fast),
            model.acceptance_.reciprocal_score(slow, how=model.reciprocal),
            rtol=1e-5,
            atol=1e-6,
        )


def test_walks_skip_busy_middle_members_as_the_features_do(model, brokers, monkeypatch):
    """Walks of length three skip middle members above the candidate sources' degree bound: so does
    the block path.
    """

    from recsys import FEATURE_NAMES, _candidates

    if "log_walks3" not in FEATURE_NAMES or not hasattr(_candidates, "MAX_MIDDLE_DEGREE"):
        pytest.skip("no bounded walks of length three in this build")
    monkeypatch.setattr(_candidates, "MAX_MIDDLE_DEGREE", 12)
    fresh = model.with_setting()  # a copy with its own pair features: no cached middle edges
    ranker = BrokerRanker().fit(fresh)
    assert (~ranker._middle).any()
    # a broker who is too busy to be a middle member
    busy = brokers[ranker.degrees_[brokers] > 12][:1]
    for chunk in (busy, brokers[:40]):
        a, b, _, fast = ranker._pairs_and_features(chunk)
        np.testing.assert_allclose(fast, fresh.features_.transform(a, b), rtol=1e-5, atol=1e-5)


def test_interest_overlaps_dense_and_sparse_parts_agree(model, ranker, brokers):
    """One broker's popular interests go through a dense product: every split gives the generic
    features.
    """
    from recsys import FEATURE_NAMES
    from recsys._broker._features import Chunk

    c = brokers[np.argmax(ranker.degrees_[brokers])]
    chunk = Chunk(model.features_.adjacency, np.array([c]))
    a, b = chunk.contacts[chunk.si], chunk.contacts[chunk.sj]
    slow = model.features_.transform(a, b)
    for dense_from in (1, 3, 10**9):
        cosine, shared = chunk.interest_overlaps(
            model.features_.interest_weights, dense_from=dense_from
        )
        np.testing.assert_allclose(
            cosine, slow[:, FEATURE_NAMES.index("interest_cosine")], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            np.log1p(shared), slow[:, FEATURE_NAMES.index("log_shared_interests")], rtol=1e-6
        )


def test_matches_a_plain_reference(model, ranker, brokers):
    """itertools over each broker's contacts, the generic features and score, a greedy capacity
    pass.
    """
    net = model.network_
    adjacency = net.adjacency.toarray()
    eligible = net.bool_attribute("open_to_intros", default=True)
    capacity = net.numeric_attribute("capacity")
    capacity = np.where(np.isnan(capacity), ranker.default_capacity, capacity)
    degrees = adjacency.sum(axis=1)
    k = 6
    sample = brokers[np.argsort(-ranker.degrees_[brokers], kind="stable")][::25][:8]
    pairs, scores = ranker.rank(sample, k=k, shared_capacity=False)
    for c, got_pairs, got_scores in zip(sample, pairs, scores):
        contacts = np.flatnonzero(adjacency[c])
        cand = [
            (a, b)
            for a, b in itertools.combinations(contacts, 2)
            if adjacency[a, b] == 0
            and eligible[a]
            and eligible[b]
            and capacity[a] > 0
            and capacity[b] > 0
        ]
        expected = []
        if cand:
            a, b = np.array(cand).T
            p = model.acceptance_.reciprocal_score(
                model.features_.transform(a, b), how=model.reciprocal
            )
            bonus = 0.5 * (model.communities_[a] != model.communities_[b]) + 0.5 * (
                (degrees[a] < 5) | (degrees[b] < 5)
            )
            score = np.exp(np.log(np.maximum(p, 1e-12)) + bonus)
            used: dict[int, int] = {}
            for i in np.lexsort((b, a, -score)):
                x, y = int(a[i]), int(b[i])
                if used.get(x, 0) < capacity[x] and used.get(y, 0) < capacity[y]:
                    expected.append(((x, y), score[i]))
                    used[x] = used.get(x, 0) + 1
                    used[y] = used.get(y, 0) + 1
                if len(expected) == k:
                    break
        valid = got_pairs[:, 0] >= 0
        assert [tuple(map(int, p)) for p in got_pairs[valid]] == [e[0] for e in expected]
        np.testing.assert_allclose(got_scores[valid], [e[1] for e in expected], rtol=1e-5)


def test_lists_from_the_generic_features_are_the_same(model, ranker, brokers, monkeypatch):
    """The block products only find the same features faster: lists ranked from
    PairFeatures.transform instead are the same lists."""
    from recsys._broker import _ranker

    slow = BrokerRanker().fit(model)
    monkeypatch.setattr(
        _ranker,
        "block_features",
        lambda chunk, features, **_: features.transform(
            chunk.contacts[chunk.si], chunk.contacts[chunk.sj]
        ),
    )
    sample = brokers[:30]
    # each list on its own: with capacity shared, scores equal to 1e-6 may take turns differently
    fast_pairs, fast_scores = ranker.rank(sample, k=5, shared_capacity=False)
    slow_pairs, slow_scores = slow.rank(sample, k=5, shared_capacity=False)
    np.testing.assert_array_equal(fast_pairs, slow_pairs)
    np.testing.assert_allclose(fast_scores, slow_scores, rtol=1e-5)


def test_capacity_is_respected_across_brokers(model, ranker, brokers):
    pairs, _ = ranker.rank(brokers, k=10, shared_capacity=True)
    members = pairs[pairs[:, :, 0] >= 0].ravel()
    counts = np.bincount(members, minlength=ranker.n_members_)
    assert (counts <= ranker.capacity_).all()
    assert counts.max() > 1  # the default capacity (3) is in use, not 1
    # members with capacity 0 or opted out are never proposed
    assert counts[~ranker.eligible_].sum() == 0
    assert (ranker.capacity_ == 1).any() and (counts[ranker.capacity_ == 1] <= 1).all()


def test_capacity_per_broker_when_asking_alone(ranker, brokers):
    pairs, _ = ranker.rank(brokers, k=10, shared_capacity=False)
    for row in pairs:
        members = row[row[:, 0] >= 0].ravel()
        counts = np.bincount(members, minlength=ranker.n_members_)
        assert (counts <= ranker.capacity_).all()


def test_bonuses_favour_bridges_and_small_networks(model, brokers):
    plain = BrokerRanker(bridge_weight=0.0, small_network_weight=0.0).fit(model)
    boosted = BrokerRanker(bridge_weight=2.0, small_network_weight=2.0).fit(model)
    communities = model.communities_

    def shares(r):
        pairs, _ = r.rank(brokers, k=5, shared_capacity=False)
        p = pairs[pairs[:, :, 0] >= 0]
        return np.mean(communities[p[:, 0]] != communities[p[:, 1]]), np.mean(
            r.small_[p].any(axis=1)
        )

    (bridge0, small0), (bridge1, small1) = shares(plain), shares(boosted)
    assert bridge1 > bridge0 and small1 > small0


def test_reasons(model, ranker, brokers):
    net = model.network_
    c = int(brokers[np.argmax(ranker.degrees_[brokers])])
    pairs, _ = ranker.rank([c], k=8)
    chosen = pairs[0][pairs[0, :, 0] >= 0]
    reasons = ranker.explain(c, chosen)
    assert len(reasons) == len(chosen) > 0
    for (a, b), r in zip(chosen, reasons):
        assert set(r) == {
            "shared_interests",
            "n_shared_interests",
            "n_other_mutual_contacts",
            "bridges_communities",
            "small_networks",
            "summary",
        }
        names_a = set(net.interest_names[net.member_interests[a].indices])
        names_b = set(net.interest_names[net.member_interests[b].indices])
        assert set(r["shared_interests"]) <= names_a & names_b and r["n_shared_interests"] == len(
            names_a & names_b
        )
        assert len(r["shared_interests"]) == min(3, r["n_shared_interests"])
        mutual = set(net.adjacency[a].indices) & set(net.adjacency[b].indices)
        assert c in mutual and r["n_other_mutual_contacts"] == len(mutual) - 1
        assert r["bridges_communities"] == bool(model.communities_[a] != model.communities_[b])
        small = [x for x in (a, b) if net.degrees[x] < 5]
        assert [s["member_id"] for s in r["small_networks"]] == [
            str(net.member_ids[x]) for x in small
        ]
        assert all(
            s["n_connections"] == net.degrees[_row(net, s["member_id"])]
            for s in r["small_networks"]
        )
        assert isinstance(r["summary"], str) and r["summary"]
    # "B has 2 connections" reads in the summary
    some_small = next((r for r in reasons if r["small_networks"]), None)
    if some_small is not None:
        side = some_small["small_networks"][0]
        assert (
            f"{side['member_id']} has {side['n_connections']} connection" in some_small["summary"]
        )


def test_clear_errors(model, network):
    lonely, isolated = _row(network, "lonely"), _row(network, "isolated")
    with pytest.raises(TooFewContactsError, match="'lonely' has 1 contact; .*at least two"):
        rank_introductions_to_make(model, [lonely], k=3)
    with pytest.raises(TooFewContactsError, match="'isolated' has 0 contacts"):
        rank_introductions_to_make(model, [isolated], k=3)
    with pytest.raises(IndexError, match="outside"):
        rank_introductions_to_make(model, [network.n_members + 5], k=3)
    with pytest.raises(ValueError, match="k must be"):
        rank_introductions_to_make(model, [0], k=0)
    pairs, _ = rank_introductions_to_make(model, [lonely, 0], k=3, on_too_few="skip")
    assert (pairs[0] == -1).all()
    with pytest.raises(Exception, match="fitted"):
        BrokerRanker().rank([0], k=3)


def test_fill_pledges(model, ranker, network):
    pledged = network.numeric_attribute("pledge_per_month")
    rows, pairs, scores = fill_pledges(model)
    want = np.nan_to_num(pledged[rows]).astype(int)
    assert (want > 0).all() and (ranker.degrees_[rows] >= 2).all()
    assert set(rows) == set(np.flatnonzero(np.nan_to_num(pledged) > 0)) & set(
        np.flatnonzero(ranker.degrees_ >= 2)
    )
    made = (pairs[:, :, 0] >= 0).sum(axis=1)
    assert (made <= want).all() and made.sum() >= 0.8 * want.sum()
    counts = np.bincount(pairs[pairs[:, :, 0] >= 0].ravel(), minlength=network.n_members)
    assert (counts <= ranker.capacity_).all()
    # members with no pledge pledge k_default
    rows_all, pairs_all, _ = fill_pledges(model, k_default=1)
    assert len(rows_all) == int((ranker.degrees_ >= 2).sum())
    counts = np.bincount(pairs_all[pairs_all[:, :, 0] >= 0].ravel(), minlength=network.n_members)
    assert (counts <= ranker.capacity_).all()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_rows=st.integers(1, 6),
    n_members=st.integers(3, 9),
    k=st.integers(1, 4),
    shared=st.booleans(),
)
def test_assign_pairs_respects_capacity_and_leaves_nothing_usable(
    seed, n_rows, n_members, k, shared
):
    rng = np.random.default_rng(seed)
    all_pairs = np.array(list(itertools.combinations(range(n_members), 2)), dtype=np.int32)
    m = int(rng.integers(1, len(all_pairs) + 1))
    cand = np.full((n_rows, m, 2), -1, dtype=np.int32)
    scores = np.full((n_rows, m), -np.inf, dtype=np.float32)
    for r in range(n_rows):
        size = int(rng.integers(0, m + 1))
        chosen = all_pairs[rng.choice(len(all_pairs), size, replace=False)]
        cand[r, :size] = chosen
        scores[r, :size] = np.sort(rng.random(size).astype(np.float32))[::-1]
    capacity = rng.integers(0, 4, n_members)
    k_rows = rng.integers(1, k + 1, n_rows)
    pairs, out_scores = assign_pairs(cand, scores, k_rows, capacity, shared=shared)
    lists = []
    for r in range(n_rows):
        valid = pairs[r, :, 0] >= 0
        got = [tuple(p) for p in pairs[r][valid]]
        assert len(got) <= k_rows[r] and len(set(got)) == len(got)
        listed = [tuple(p) for p in cand[r] if p[0] >= 0]
        positions = [listed.index(p) for p in got]
        assert positions == sorted(positions)  # the candidates' order is kept: best first
        np.testing.assert_array_equal(out_scores[r][valid], scores[r][positions])
        lists.append((got, listed, np.bincount(pairs[r][valid].ravel(), minlength=n_members)))
    total = sum(counts for _, _, counts in lists)
    for r, (got, listed, counts) in enumerate(lists):
        used = total if shared else counts
        assert (used <= capacity).all()
        if len(got) < k_rows[r]:  # a short list: every candidate left out has a member at capacity
            for a, b in set(listed) - set(got):
                assert used[a] >= capacity[a] or used[b] >= capacity[b]


def test_evaluate_broker_against_heldout_and_past_introductions(tables, model, ranker, brokers):
    """Known answers: "held-out" pairs are non-connections of the training graph chosen here, so
    recall is counted by hand.
    """
    net = model.network_
    adjacency = net.adjacency.toarray()
    k = 5
    pairs, _ = ranker.rank(brokers, k=k, shared_capacity=False)
    rng = np.random.default_rng(3)
    # held out: the first suggestion of every 7th broker, plus random pairs of contacts never
    # suggested
    heldout = {tuple(map(int, row[0])) for row in pairs[::7] if row[0, 0] >= 0}
    for c in rng.choice(brokers, 30, replace=False):
        contacts = np.flatnonzero(adjacency[c])
        a, b = np.sort(rng.choice(contacts, 2, replace=False))
        if adjacency[a, b] == 0:
            heldout.add((int(a), int(b)))
    heldout = np.array(sorted(heldout), dtype=np.int32)
    lists = {
        int(c): {tuple(map(int, p)) for p in row if p[0] >= 0} for c, row in zip(brokers, pairs)
    }
    recalls = []
    for c in brokers:
        contacts = set(np.flatnonzero(adjacency[c]).tolist())
        relevant = [tuple(p) for p in heldout.tolist() if p[0] in contacts and p[1] in contacts]
        if relevant:
            recalls.append(sum(p in lists[int(c)] for p in relevant) / len(relevant))

    # past introductions: per broker, its first suggestion accepted and its second declined
    # (written
    # either way round), and an accepted introduction no broker made (it does not count)
    ids = net.member_ids
    rows = []
    for c, row in zip(brokers[:40], pairs[:40]):
        if row[1, 0] >= 0:
            rows.append((ids[row[0, 0]], ids[row[0, 1]], 1, ids[c]))
            rows.append((ids[row[1, 1]], ids[row[1, 0]], 0, ids[c]))
    frame = pd.DataFrame(rows, columns=["member_a", "member_b", "accepted", "broker"])
    frame = pd.concat(
        [
            frame,
            pd.DataFrame(
                {"member_a": [ids[0]], "member_b": [ids[1]], "accepted": [1], "broker": [""]}
            ),
        ]
    )
    frame["created_at"] = "2024-03-01"
    loaded = recsys.network_from_frames(
        tables["members"],
        tables["interests"],
        tables["connections"],
        introductions=frame,
        sensitive_attributes=("gender",),
    )
    assert (loaded.introductions["broker"] >= 0).sum() == len(rows)

    metrics = evaluate_broker(
        model, heldout, k=k, ranker=ranker, introductions=loaded.introductions
    )
    assert metrics["broker/recall_at_5"] == pytest.approx(np.mean(recalls))
    assert metrics["broker/brokers_with_heldout"] == len(recalls)
    for name in (
        "baseline/common_neighbours/recall_at_5",
        "acceptance_only/recall_at_5",
        "shared_capacity/recall_at_5",
        "bridge_rate",
        "small_network_share",
        "baseline/common_neighbours/bridge_rate",
    ):
        assert 0 <= metrics[f"broker/{name}"] <= 1, name
    chosen = np.concatenate([np.array(sorted(v)) for v in lists.values() if v])
    assert metrics["broker/bridge_rate"] == pytest.approx(
        np.mean(model.communities_[chosen[:, 0]] != model.communities_[chosen[:, 1]])
    )
    assert metrics["broker/small_network_share"] == pytest.approx(
        np.mean(ranker.small_[chosen].any(axis=1))
    )
    assert metrics["broker/introductions/precision_at_5"] == pytest.approx(0.5)
    assert metrics["broker/introductions/labelled_in_top_5"] == len(rows)
    assert not any("@" in name for name in metrics)
    # no table, no introduction figures
    assert not any(
        "introductions/" in name for name in evaluate_broker(model, heldout, k=k, ranker=ranker)
    )


# ---------------------------------------------------------------------------------- edges
def test_cli_broker(saved, network, ranker, capsys):
    c = int(np.flatnonzero(ranker.degrees_ >= 6)[0])
    member = str(network.member_ids[c])
    assert main(["broker", "--model", str(saved), "--member", member, "--k", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["member_id"] == member and 0 < len(payload["introductions_to_make"]) <= 4
    pairs, scores = ranker.rank([c], k=4, shared_capacity=False)
    got = [(i["member_a"], i["member_b"]) for i in payload["introductions_to_make"]]
    valid = pairs[0, :, 0] >= 0
    assert got == [
        (str(network.member_ids[a]), str(network.member_ids[b])) for a, b in pairs[0][valid]
    ]
    for intro in payload["introductions_to_make"]:
        assert set(intro) == {"member_a", "member_b", "score", "reasons"}
        assert "summary" in intro["reasons"] and "n_other_mutual_contacts" in intro["reasons"]
    assert main(["broker", "--model", str(saved), "--member", member]) == 0
    assert f"Introductions {member} could make" in capsys.readouterr().out


@pytest.mark.parametrize(
    "member, k, phrase",
    [
        ("nobody", 3, "unknown member 'nobody'"),
        ("lonely", 3, "'lonely' has 1 contact"),
        ("isolated", 3, "'isolated' has 0 contacts"),
        ("lonely", 0, "--k must be"),
    ],
)
def test_cli_broker_errors(saved, capsys, member, k, phrase):
    assert (
        main(["broker", "--model", str(saved), "--member", member, "--k", str(k), "--json"]) == 2
    )
    err = capsys.readouterr().err
    assert phrase in err and "Traceback" not in err


def test_http_endpoint(client, saved, network, ranker):
    c = int(np.flatnonzero(ranker.degrees_ >= 6)[1])
    member = str(network.member_ids[c])
    res = client.get(f"/v1/members/{member}/introductions-to-make", params={"k": 5})
    assert res.status_code == 200
    body = res.json()
    assert body["member_id"] == member and body["model_version"]
    local = Recommender.load(saved).rank_introductions_to_make(member, 5).to_dict()
    assert body["introductions_to_make"] == local["introductions_to_make"]
    assert 0 < len(body["introductions_to_make"]) <= 5
    first = body["introductions_to_make"][0]
    assert set(first) == {"member_a", "member_b", "score", "reasons"}
    assert set(first["reasons"]) == {
        "shared_interests",
        "n_shared_interests",
        "n_other_mutual_contacts",
        "bridges_communities",
        "small_networks",
        "summary",
    }
    # default k is 10
    assert (
        len(
            client.get(f"/v1/members/{member}/introductions-to-make").json()[
                "introductions_to_make"
            ]
        )
        <= 10
    )


@pytest.mark.parametrize(
    "member, query, status, phrase",
    [
        ("nobody", "", 404, "unknown member 'nobody'"),
        ("lonely", "", 422, "'lonely' has 1 contact"),
        ("isolated", "?k=3", 422, "'isolated' has 0 contacts"),
        ("lonely", "?k=0", 422, "k"),
        ("lonely", "?k=101", 422, "k"),
        ("lonely", "?k=ten", 422, "k"),
    ],
)
def test_http_errors(client, member, query, status, phrase):
    res = client.get(f"/v1/members/{member}/introductions-to-make{query}")
    assert res.status_code == status
    body = res.json()
    assert set(body) == {"error", "message", "details"} and phrase in body["message"]


def test_no_output_carries_a_sensitive_value(
    model, ranker, brokers, saved, client, network, capsys
):
    pairs, _ = ranker.rank(brokers, k=10)
    texts = [
        json.dumps(ranker.explain(int(c), row[row[:, 0] >= 0]))
        for c, row in zip(brokers[:50], pairs[:50])
    ]
    for c in brokers[:10]:
        member = str(network.member_ids[c])
        texts.append(client.get(f"/v1/members/{member}/introductions-to-make").text)
        main(["broker", "--model", str(saved), "--member", member, "--json"])
        main(["broker", "--model", str(saved), "--member", member])
    texts.append(client.get("/v1/members/lonely/introductions-to-make").text)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    assert all(SECRET not in t for t in texts)
    assert any("summary" in t for t in texts)
