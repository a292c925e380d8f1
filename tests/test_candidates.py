"""One contract every candidate source passes, plus known answers."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import (
    AdamicAdarCandidates,
    ALSCandidates,
    InterestOverlapCandidates,
    PersonalizedPageRankCandidates,
    merge_pools,
    network_from_frames,
)

SOURCES = {
    "adamic_adar": lambda: AdamicAdarCandidates(),
    "resource_allocation": lambda: AdamicAdarCandidates(weighting="resource_allocation"),
    "interests": lambda: InterestOverlapCandidates(max_df=0.2),
    "als_exact": lambda: ALSCandidates(factors=16, iterations=5, random_state=0),
    "als_hnsw": lambda: ALSCandidates(factors=16, iterations=5, index="hnsw", random_state=0),
    "als_ivf": lambda: ALSCandidates(factors=16, iterations=5, index="ivf", random_state=0),
    "ppr": lambda: PersonalizedPageRankCandidates(),
    "ppr_by_degree": lambda: PersonalizedPageRankCandidates(normalize="degree", epsilon=1e-3),
}


@pytest.fixture(scope="module", params=sorted(SOURCES))
def source(request, small_network):
    return request.param, SOURCES[request.param]().fit(small_network)


def test_contract_shapes_dtypes_padding(source, small_network):
    _, src = source
    rows = np.arange(0, 200, 3)
    ids, scores = src.candidates(rows, 40)
    assert ids.shape == scores.shape == (len(rows), 40)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    pad = ids < 0
    assert (ids[pad] == -1).all() and np.isneginf(scores[pad]).all()
    assert np.isfinite(scores[~pad]).all()
    # padding only at the end of a row, scores sorted best first
    assert not (pad[:, :-1] & ~pad[:, 1:]).any()
    steps = np.diff(np.where(pad, 0.0, scores), axis=1)  # -inf - -inf would be NaN
    assert (steps[~pad[:, 1:]] <= 1e-6).all()
    # no duplicates within a row
    for row in ids:
        real = row[row >= 0]
        assert len(real) == len(set(real.tolist()))
    assert (ids[~pad] < small_network.n_members).all()


def test_contract_exclusions(source, small_network):
    _, src = source
    rows = np.arange(0, 300, 7)
    ids, _ = src.candidates(rows, 60)
    adj = small_network.adjacency
    for r, member in enumerate(rows):
        real = ids[r][ids[r] >= 0]
        assert member not in real
        assert not np.isin(real, adj[member].indices).any()


def test_contract_single_member_equals_batch(source):
    _, src = source
    batch_ids, batch_scores = src.candidates(np.array([5, 9, 13]), 25)
    one_ids, one_scores = src.candidates(9, 25)
    assert one_ids.shape == (1, 25)
    assert np.array_equal(one_ids[0], batch_ids[1])
    np.testing.assert_allclose(one_scores[0], batch_scores[1], rtol=1e-5)


def test_contract_deterministic(source, small_network):
    name, _ = source
    a = SOURCES[name]().fit(small_network).candidates(np.arange(50), 30)
    b = SOURCES[name]().fit(small_network).candidates(np.arange(50), 30)
    assert np.array_equal(a[0], b[0])


def test_contract_opted_out_members_never_proposed():
    members = pd.DataFrame(
        {
            "member_id": list("abcdef"),
            "open_to_intros": ["true", "true", "false", "true", "true", "true"],
        }
    )
    # a - b - c - d chain plus b - e, everyone likes x, y
    connections = pd.DataFrame(
        {"member_a": ["a", "b", "c", "b", "e"], "member_b": ["b", "c", "d", "e", "f"]}
    )
    interests = pd.DataFrame({"member_id": list("abcdef") * 2, "interest": ["x"] * 6 + ["y"] * 6})
    net = network_from_frames(members, interests, connections)
    c_row = int(net.rows_of(["c"])[0])
    for name, make in SOURCES.items():
        src = (InterestOverlapCandidates(max_df=1.0) if name == "interests" else make()).fit(net)
        ids, _ = src.candidates(np.arange(net.n_members), 5)
        assert c_row not in ids, name


def test_adamic_adar_known_answer():
    # a-b, a-c, b-d, c-d, c-e: for a, d has common neighbours b (deg 2) and c (deg 3); e has c
    members = pd.DataFrame({"member_id": list("abcde")})
    connections = pd.DataFrame({"member_a": list("aabcc"), "member_b": list("bcdde")})
    interests = pd.DataFrame({"member_id": ["a"], "interest": ["x"]})
    net = network_from_frames(members, interests, connections)
    ids, scores = AdamicAdarCandidates().fit(net).candidates(0, 3)
    names = net.member_ids[ids[0][ids[0] >= 0]].tolist()
    assert names == ["d", "e"]
    np.testing.assert_allclose(
        scores[0][:2], [1 / np.log(2) + 1 / np.log(3), 1 / np.log(3)], rtol=1e-6
    )


def test_planted_communities_dominate_friends_of_friends(small_network):
    planted = small_network.attributes["planted_community"].to_numpy()
    rows = np.arange(0, small_network.n_members, 5)
    ids, _ = AdamicAdarCandidates().fit(small_network).candidates(rows, 10)
    r, j = np.nonzero(ids >= 0)
    same = planted[rows[r]] == planted[ids[r, j]]
    assert same.mean() > 0.6


def test_interest_candidates_share_community(small_network):
    planted = small_network.attributes["planted_community"].to_numpy()
    rows = np.arange(0, small_network.n_members, 5)
    ids, _ = InterestOverlapCandidates(max_df=0.1).fit(small_network).candidates(rows, 10)
    r, j = np.nonzero(ids >= 0)
    same = planted[rows[r]] == planted[ids[r, j]]
    base = np.mean(planted[rows[r]] == planted[np.random.default_rng(0).permutation(ids[r, j])])
    assert same.mean() > base + 0.2


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_ann_agrees_with_exact_search(small_network, index):
    exact = ALSCandidates(factors=16, iterations=5, index="exact", random_state=0).fit(
        small_network
    )
    approx = ALSCandidates(
        factors=16, iterations=5, index=index, random_state=0, ivf_probe_share=0.2
    ).set_factors(small_network, exact.member_factors_)
    rows = np.arange(0, small_network.n_members, 4)
    e_ids, _ = exact.candidates(rows, 20)
    a_ids, _ = approx.candidates(rows, 20)
    hits = sum(len(np.intersect1d(e[e >= 0], a[a >= 0])) for e, a in zip(e_ids, a_ids))
    total = int((e_ids >= 0).sum())
    assert hits / total >= 0.95


def test_cold_start_from_interests(small_network):
    src = InterestOverlapCandidates(max_df=0.2).fit(small_network)
    query = small_network.member_interests[[0]]
    ids, scores = src.candidates_for_interests(sp.csr_matrix(query), 10)
    assert (ids[0] >= 0).sum() > 0
    assert 0 in ids[0]  # the member who has exactly these interests is the best match


def test_merge_pools_keeps_sources_and_unique_ids():
    a = (np.array([[1, 2, 3, -1]], np.int32), np.array([[3, 2, 1, -np.inf]], np.float32))
    b = (
        np.array([[3, 4, -1, -1]], np.int32),
        np.array([[0.9, 0.5, -np.inf, -np.inf]], np.float32),
    )
    ids, bits = merge_pools({"adamic_adar": a, "interests": b}, pool_size=6)
    got = dict(zip(ids[0].tolist(), bits[0].tolist()))
    assert got == {1: 1, 2: 1, 3: 3, 4: 2, -1: 0}
    # 3 is proposed by both: fused rank puts it first
    assert ids[0][0] == 3
    ids2, _ = merge_pools({"adamic_adar": a, "interests": b}, pool_size=2)
    assert ids2.shape == (1, 2) and ids2[0][0] == 3


def test_shared_interest_search_asks_again_when_connections_fill_the_first_results():
    # member 0's 30 nearest members by embedding are all its connections: the first 2n + 1 results
    # leave nothing to propose, so the search must look further for them (and only for them)
    n_members = 200
    angles = np.linspace(0, np.pi, n_members)
    factors = np.column_stack([np.cos(angles), np.sin(angles)]).astype(np.float32)
    members = pd.DataFrame({"member_id": [f"m{i}" for i in range(n_members)]})
    connections = pd.DataFrame(
        {"member_a": ["m0"] * 30, "member_b": [f"m{i}" for i in range(1, 31)]}
    )
    interests = pd.DataFrame({"member_id": members["member_id"], "interest": "x"})
    net = network_from_frames(members, interests, connections)
    src = ALSCandidates(index="exact").set_factors(net, factors)
    ids, scores = src.candidates(np.array([0, 100]), 5)
    rows = net.member_ids.tolist()
    assert [rows[i] for i in ids[0]] == [
        f"m{i}" for i in range(31, 36)
    ]  # next nearest after the connections
    assert np.all(np.diff(scores[0]) <= 0) and np.isfinite(scores).all()
    # member 100 has no connections: its five nearest, whatever the first search returned
    nearest = np.sort(factors[[i for i in range(n_members) if i != 100]] @ factors[100])[::-1][:5]
    np.testing.assert_allclose(scores[1], nearest, rtol=1e-6)
