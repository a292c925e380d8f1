"""The compiled kernels against dense numpy references on a small network: same scores, same
order (ties to the smaller member row), same exclusions; serial and parallel paths agree."""

import numpy as np
import pytest

from recsys import (
    AdamicAdarCandidates,
    InterestOverlapCandidates,
    _candidates,
    _kernels,
    synthetic_network,
)
from recsys._candidates import hop_weights, merge_pools


@pytest.fixture(scope="module")
def net():
    return synthetic_network(600, seed=3)


def _dense_topn(scores: np.ndarray, n: int):
    """Reference top-n per row: positive scores, best first, ties to the smaller column."""
    ids = np.full((len(scores), n), -1, np.int32)
    out = np.full((len(scores), n), -np.inf, np.float32)
    for i, row in enumerate(scores):
        cols = np.flatnonzero(row > 0)
        order = cols[np.lexsort((cols, -row[cols]))][:n]
        ids[i, : len(order)] = order
        out[i, : len(order)] = row[order]
    return ids, out


def _excluded(net, rows, scores):
    a = net.adjacency.toarray() > 0
    eligible = net.bool_attribute("open_to_intros", default=True)
    scores = scores.copy()
    scores[np.arange(len(rows)), rows] = 0
    scores[a[rows]] = 0
    scores[:, ~eligible] = 0
    return scores


@pytest.mark.parametrize("eps", [0.0, 0.03])
def test_friends_of_friends_match_the_matrix_products(net, monkeypatch, eps):
    monkeypatch.setattr(_candidates, "MAX_MIDDLE_DEGREE", 15)  # some middles are too busy
    a = net.adjacency.toarray().astype(np.float64)
    w = hop_weights(net.degrees).astype(np.float64)
    m = np.diag((net.degrees <= 15).astype(np.float64))
    rows = np.arange(0, 600, 5)
    dense = (a[rows] * w) @ a + eps * (a[rows] @ m @ a @ m @ a)
    want_ids, want_scores = _dense_topn(_excluded(net, rows, dense), 40)
    got_ids, got_scores = AdamicAdarCandidates(three_hop_weight=eps).fit(net).candidates(rows, 40)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)
    # equal scores computed in another order may differ in the last bit: compare ids where scores
    # differ clearly
    distinct = np.isclose(np.diff(want_scores, axis=1), 0, atol=1e-6)
    clear = ~np.pad(distinct, ((0, 0), (0, 1))) & ~np.pad(distinct, ((0, 0), (1, 0)))
    assert (got_ids[clear] == want_ids[clear]).all()


@pytest.mark.parametrize("middles", [1, 5, 10_000])
def test_three_hop_walks_from_the_most_walked_two_hop_members(net, monkeypatch, middles):
    monkeypatch.setattr(_candidates, "MAX_MIDDLE_DEGREE", 15)
    a = net.adjacency.toarray().astype(np.float64)
    ok = net.degrees <= 15
    w = hop_weights(net.degrees).astype(np.float64)
    indptr, indices = net.adjacency.indptr, net.adjacency.indices
    rows = np.arange(0, 600, 5)
    dense = (a[rows] * w) @ a
    for i, u in enumerate(rows):
        paths = (a[u] * ok) @ a * ok  # two-step walks u–x–y through allowed x and y
        seen = list(
            dict.fromkeys(
                int(y)
                for x in indices[indptr[u] : indptr[u + 1]]
                for y in indices[indptr[x] : indptr[x + 1]]
            )
        )
        walked = sorted(
            (y for y in seen if paths[y] > 0), key=lambda y: (-paths[y], seen.index(y))
        )[:middles]
        for y in walked:
            dense[i] += 0.03 * paths[y] * a[y]
    want_ids, want_scores = _dense_topn(_excluded(net, rows, dense), 40)
    got_ids, got_scores = (
        AdamicAdarCandidates(three_hop_weight=0.03, three_hop_middles=middles)
        .fit(net)
        .candidates(rows, 40)
    )
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)
    distinct = np.isclose(np.diff(want_scores, axis=1), 0, atol=1e-6)
    clear = ~np.pad(distinct, ((0, 0), (0, 1))) & ~np.pad(distinct, ((0, 0), (1, 0)))
    assert (got_ids[clear] == want_ids[clear]).all()
    if middles == 10_000:  # more than any member has: the same as no limit
        all_ids, all_scores = (
            AdamicAdarCandidates(three_hop_weight=0.03).fit(net).candidates(rows, 40)
        )
        np.testing.assert_array_equal(got_ids, all_ids)


def test_shared_interests_match_the_matrix_product(net):
    src = InterestOverlapCandidates(max_df=0.2).fit(net)
    rows = np.arange(0, 600, 7)
    dense = (src.weighted_[rows] @ src.weighted_.T).toarray().astype(np.float64)
    want_ids, want_scores = _dense_topn(_excluded(net, rows, dense), 30)
    got_ids, got_scores = src.candidates(rows, 30)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-7)
    assert (np.sort(got_ids, axis=1) >= -1).all()
    assert ((got_ids >= 0) == (want_ids >= 0)).all()


def test_serial_and_parallel_paths_agree(net, monkeypatch):
    src = AdamicAdarCandidates(three_hop_weight=0.03).fit(net)
    rows = np.arange(600)
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 10**9)
    serial = src.candidates(rows, 50)
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 0)
    parallel = src.candidates(rows, 50)
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])


def test_pair_overlaps_match_dense_counts(net, monkeypatch):
    monkeypatch.setattr(_candidates, "MAX_MIDDLE_DEGREE", 15)
    rng = np.random.default_rng(0)
    u = rng.integers(0, 600, 3000)
    v = rng.integers(0, 600, 3000)
    a = net.adjacency.toarray().astype(np.float64)
    ok = np.diag((net.degrees <= 15).astype(np.float64))
    tfidf = _candidates.tfidf_interests(net.member_interests)
    got = _kernels.pair_overlaps(
        u,
        v,
        net.adjacency,
        hop_weights(net.degrees).astype(np.float64),
        hop_weights(net.degrees, weighting="resource_allocation").astype(np.float64),
        net.degrees <= 15,
        tfidf,
    )
    common = a[u] * a[v]
    np.testing.assert_allclose(got[:, 0], common @ hop_weights(net.degrees), rtol=1e-5)
    np.testing.assert_allclose(
        got[:, 1], common @ hop_weights(net.degrees, weighting="resource_allocation"), rtol=1e-5
    )
    np.testing.assert_array_equal(got[:, 2], common.sum(axis=1))
    walks = a @ ok @ a @ ok @ a
    np.testing.assert_array_equal(got[:, 3], walks[u, v])
    t = tfidf.toarray()
    np.testing.assert_array_equal(got[:, 4], ((t[u] > 0) & (t[v] > 0)).sum(axis=1))
    np.testing.assert_allclose(got[:, 5], (t[u] * t[v]).sum(axis=1), rtol=1e-5, atol=1e-7)
    inv_sqrt = np.diag((net.degrees <= 15) / np.sqrt(np.maximum(net.degrees, 1)))
    l3 = a @ inv_sqrt @ a @ inv_sqrt @ a
    np.testing.assert_allclose(got[:, 6], l3[u, v], rtol=1e-9, atol=1e-12)


def test_merge_matches_reciprocal_rank_fusion():
    a = np.array([[3, 1, 2, -1]], np.int32)
    b = np.array([[1, 4, -1, -1]], np.int32)
    ids, bits = merge_pools({"adamic_adar": (a, None), "interests": (b, None)}, pool_size=4)
    # 1: 1/62 + 1/61, then 3: 1/61, 4: 1/62, 2: 1/63
    assert ids.tolist() == [[1, 3, 4, 2]]
    assert bits.tolist() == [[3, 1, 2, 1]]


def test_keep_pairs_drops_self_connections_and_opted_out(net):
    adjacency = net.adjacency
    eligible = np.ones(net.n_members, bool)
    eligible[5] = False
    u = 0
    friend = int(adjacency.indices[adjacency.indptr[u]])
    keep = _kernels.keep_pairs(
        np.array([u]), np.zeros(4, np.int64), np.array([u, friend, 5, 599]), adjacency, eligible
    )
    expected_last = not (adjacency[u].toarray()[0, 599] > 0)
    assert keep.tolist() == [False, False, False, expected_last]


def test_scratch_is_left_clear_between_calls(net):
    src = AdamicAdarCandidates(three_hop_weight=0.03).fit(net)
    first = src.candidates([7], 20)
    src.candidates(np.arange(10), 20)  # serial path, same thread-local scratch
    again = src.candidates([7], 20)
    np.testing.assert_array_equal(first[0], again[0])
    acc, seen, _ = _kernels._common.scratch(net.n_members)
    assert not acc.any() and not seen.any()


@pytest.mark.parametrize("how", ["harmonic", "product", "none"])
@pytest.mark.parametrize("parallel", [False, True])
def test_pools_scored_in_one_pass_equal_features_then_model(fitted, monkeypatch, how, parallel):
    model, train, _ = fitted
    rows = np.arange(0, train.n_members, 7)
    pool_ids, _ = model.pool(rows)
    pool_ids[3, 10:] = -1  # padding mid-row stays padding
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 0 if parallel else 10**9)
    scores, outside = model.features_.score_pools(rows, pool_ids, model.acceptance_, how=how)
    r, j = np.nonzero(pool_ids >= 0)
    feats = model.features_.transform(rows[r], pool_ids[r, j])
    np.testing.assert_allclose(
        scores[r, j], model.acceptance_.reciprocal_score(feats, how=how), rtol=2e-6, atol=1e-7
    )
    np.testing.assert_array_equal(outside[r, j], feats[:, 2] == 0)  # log_common_contacts
    assert np.isneginf(scores[pool_ids < 0]).all() and not outside[pool_ids < 0].any()
    assert outside.any() and (~outside[r, j]).any()  # both kinds of pair were scored


def test_a_mixture_model_is_scored_through_the_features(fitted):
    from recsys import ConstrainedAcceptanceModel

    model, train, _ = fitted
    mixture = ConstrainedAcceptanceModel()
    mixture.members_, mixture.weights_ = (
        [model.acceptance_, model.acceptance_],
        np.array([0.5, 0.5]),
    )
    rows = np.arange(20)
    pool_ids, _ = model.pool(rows)
    got, _ = model.features_.score_pools(rows, pool_ids, mixture)
    want, _ = model.features_.score_pools(rows, pool_ids, model.acceptance_)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    with pytest.raises(ValueError, match="reciprocal combination"):
        model.features_.score_pools(rows, pool_ids, model.acceptance_, how="mean")


def test_merge_serial_and_parallel_agree(net, monkeypatch):
    rng = np.random.default_rng(5)
    lists = {
        name: (rng.integers(-1, 600, (300, width)).astype(np.int32), None)
        for name, width in (("adamic_adar", 40), ("interests", 20), ("als", 20))
    }
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 10**9)
    serial = merge_pools(lists, pool_size=30)
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 0)
    parallel = merge_pools(lists, pool_size=30)
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])
