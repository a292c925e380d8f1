"""The personalized PageRank push against a dense solve of the same PageRank: every estimate
within the Andersen–Chung–Lang bound, the ranking and its exclusions as the dense reference's,
serial and parallel paths equal, and a known answer (one push level = resource allocation)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import (
    AdamicAdarCandidates,
    PersonalizedPageRankCandidates,
    _kernels,
    network_from_frames,
    synthetic_network,
)


@pytest.fixture(scope="module")
def net():
    return synthetic_network(400, seed=3)


def _dense_ppr(adjacency: sp.csr_matrix, alpha: float) -> np.ndarray:
    """Rows π_u = α Σ_k (1 − α)^k e_u W^k, W = D⁻¹A (zero rows for members without
    connections), solved exactly: Π = α (I − (1 − α) W)⁻¹."""
    a = (adjacency.toarray() > 0).astype(np.float64)
    deg = a.sum(axis=1)
    w = np.divide(a, deg[:, None], out=np.zeros_like(a), where=deg[:, None] > 0)
    return alpha * np.linalg.inv(np.eye(len(a)) - (1 - alpha) * w)


def _power_iteration(adjacency: sp.csr_matrix, alpha: float, steps: int = 300) -> np.ndarray:
    """The same rows by iterating ``Π ← α I + (1 − α) Π W``."""
    a = (adjacency.toarray() > 0).astype(np.float64)
    deg = a.sum(axis=1)
    w = np.divide(a, deg[:, None], out=np.zeros_like(a), where=deg[:, None] > 0)
    pi = np.zeros_like(a)
    for _ in range(steps):
        pi = alpha * np.eye(len(a)) + (1 - alpha) * pi @ w
    return pi


def _all_pairs(adjacency, alpha, eps, by_degree=False):
    n = adjacency.shape[0]
    u, v = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return _kernels.ppr_pair_scores(
        u, v, adjacency.indptr, adjacency.indices, alpha, eps, by_degree=by_degree
    )


def _hand_graphs():
    """A star with a tail, two components, a member with no connections, a triangle."""
    edges = [(0, 1), (0, 2), (0, 3), (0, 4), (4, 5), (5, 6), (6, 7), (8, 9), (9, 10), (8, 10)]
    edges += [(10, 11)]
    n = 13  # 12 has no connections
    a, b = np.array(edges).T
    adj = sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    adj.sort_indices()
    return adj


def test_the_dense_references_agree(net):
    np.testing.assert_allclose(
        _dense_ppr(net.adjacency, 0.15), _power_iteration(net.adjacency, 0.15), atol=1e-12
    )


@pytest.mark.parametrize("alpha", [0.15, 0.5])
@pytest.mark.parametrize("eps", [1e-2, 1e-3, 1e-5])
@pytest.mark.parametrize("graph", ["synthetic", "hand"])
def test_push_within_the_acl_bound_of_the_dense_pagerank(net, alpha, eps, graph):
    adjacency = net.adjacency if graph == "synthetic" else _hand_graphs()
    exact = _power_iteration(adjacency, alpha)
    approx = _all_pairs(adjacency, alpha, eps)
    deg = np.diff(adjacency.indptr)
    gap = exact - approx
    # never over, and under by at most ε · deg(v) (the Andersen–Chung–Lang guarantee)
    assert gap.min() >= -1e-12
    assert (gap <= eps * deg[None, :] + 1e-12).all()
    # a member without connections keeps its teleport mass and reaches no one
    isolated = np.flatnonzero(deg == 0)
    np.testing.assert_allclose(approx[isolated][:, isolated], alpha * np.eye(len(isolated)))


def test_degree_normalised_scores_are_within_epsilon(net):
    eps = 1e-3
    exact = _dense_ppr(net.adjacency, 0.15) / np.maximum(net.degrees, 1)[None, :]
    approx = _all_pairs(net.adjacency, 0.15, eps, by_degree=True)
    gap = exact - approx
    assert gap.min() >= -1e-12 and gap.max() <= eps + 1e-12
    # the symmetry that makes the bound hold: π_u[v] / deg(v) = π_v[u] / deg(u)
    np.testing.assert_allclose(exact, exact.T, atol=1e-12)


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


def _clear(scores: np.ndarray, gap, *, last_unclear: bool = False) -> np.ndarray:
    """Places whose score is more than ``gap`` from both neighbours' (padding is close to
    padding): their member does not depend on rounding. With ``last_unclear`` the last place is
    not compared (the next, unseen score may be as close)."""
    filled = np.where(np.isfinite(scores), scores, -1.0)
    close = np.abs(np.diff(filled, axis=1)) <= gap
    after = np.pad(close, ((0, 0), (0, 1)), constant_values=last_unclear)
    return ~after & ~np.pad(close, ((0, 0), (1, 0)))


@pytest.mark.parametrize("normalize", ["none", "degree"])
def test_candidates_are_the_top_of_the_push_without_exclusions(net, normalize):
    src = PersonalizedPageRankCandidates(alpha=0.2, epsilon=1e-4, normalize=normalize).fit(net)
    rows = np.arange(0, net.n_members, 3)
    u, v = np.meshgrid(rows, np.arange(net.n_members), indexing="ij")
    dense = src.pair_scores(u, v).astype(np.float64)
    a = net.adjacency.toarray() > 0
    dense[np.arange(len(rows)), rows] = 0
    dense[a[rows]] = 0
    dense[:, ~net.bool_attribute("open_to_intros", default=True)] = 0
    want_ids, want_scores = _dense_topn(dense, 50)
    got_ids, got_scores = src.candidates(rows, 50)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6)
    # equal scores computed in another order may differ in the last bit: compare clear ones
    clear = _clear(want_scores, 1e-6 * want_scores[:, :1])
    assert (got_ids[clear] == want_ids[clear]).all()
    # and within the ACL bound of the dense PageRank at every proposed member
    exact = _dense_ppr(net.adjacency, 0.2)
    if normalize == "degree":
        exact /= np.maximum(net.degrees, 1)[None, :]
    r, j = np.nonzero(got_ids >= 0)
    bound = 1e-4 * (1 if normalize == "degree" else net.degrees[got_ids[r, j]])
    gap = exact[rows[r], got_ids[r, j]] - got_scores[r, j]
    assert (gap >= -1e-6).all() and (gap <= bound + 1e-6).all()


def test_a_small_epsilon_ranks_as_the_dense_pagerank(net):
    rows = np.arange(0, net.n_members, 5)
    exact = _dense_ppr(net.adjacency, 0.15)[rows]
    a = net.adjacency.toarray() > 0
    exact[np.arange(len(rows)), rows] = 0
    exact[a[rows]] = 0
    exact[:, ~net.bool_attribute("open_to_intros", default=True)] = 0
    want_ids, want_scores = _dense_topn(exact, 30)
    got_ids, got_scores = (
        PersonalizedPageRankCandidates(epsilon=1e-7, normalize="none")
        .fit(net)
        .candidates(rows, 30)
    )
    tol = 1e-7 * net.degrees.max()  # the ACL bound at the best-connected member
    np.testing.assert_allclose(got_scores, want_scores, rtol=0, atol=tol)
    # where the dense scores are further apart than twice the bound the push keeps their order
    # (the last place is unclear: the dense 31st may be as close)
    clear = _clear(want_scores, 2 * tol, last_unclear=True)
    assert clear.mean() > 0.5
    assert (got_ids[clear] == want_ids[clear]).all()


def test_one_level_of_push_is_resource_allocation():
    # with ε so large that only the member and (always) their connections are pushed, and no
    # triangles (a bipartite network: a connection never passes residual to another), a two-hop
    # member v holds α (1 − α)² / deg(u) · Σ_{w ∈ N(u) ∩ N(v)} 1 / deg(w): resource allocation
    rng = np.random.default_rng(4)
    left, right = rng.integers(0, 150, 900), rng.integers(150, 300, 900)
    members = pd.DataFrame({"member_id": [f"m{i}" for i in range(300)]})
    connections = pd.DataFrame({"member_a": left, "member_b": right}).drop_duplicates()
    connections = connections.map(lambda i: f"m{i}")
    interests = pd.DataFrame({"member_id": members["member_id"], "interest": "x"})
    net = network_from_frames(members, interests, connections)
    alpha = 0.15
    rows = np.arange(0, net.n_members, 3)
    got_ids, got_scores = (
        PersonalizedPageRankCandidates(alpha=alpha, epsilon=10.0, normalize="none")
        .fit(net)
        .candidates(rows, 40)
    )
    ra_ids, ra_scores = (
        AdamicAdarCandidates(weighting="resource_allocation").fit(net).candidates(rows, 40)
    )
    scale = alpha * (1 - alpha) ** 2 / net.degrees[rows].astype(np.float64)
    np.testing.assert_allclose(got_scores, ra_scores * scale[:, None], rtol=1e-5)
    clear = _clear(ra_scores, 1e-5 * ra_scores[:, :1])
    assert (got_ids[clear] == ra_ids[clear]).all()


def test_serial_and_parallel_paths_agree(net, monkeypatch):
    src = PersonalizedPageRankCandidates(epsilon=1e-4).fit(net)
    rows = np.arange(net.n_members)
    rng = np.random.default_rng(0)
    u, v = rng.integers(0, net.n_members, (2, 3000))
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 10**9)
    serial = src.candidates(rows, 60)
    serial_pairs = src.pair_scores(u, v)
    monkeypatch.setattr(_kernels._common, "PARALLEL_MIN_MEMBERS", 0)
    parallel = src.candidates(rows, 60)
    parallel_pairs = src.pair_scores(u, v)
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])
    np.testing.assert_array_equal(serial_pairs, parallel_pairs)


def test_scratch_is_left_clear_between_calls(net):
    src = PersonalizedPageRankCandidates().fit(net)
    first = src.candidates([7], 20)
    src.candidates(np.arange(10), 20)  # serial path, same thread-local scratch
    src.pair_scores(np.arange(10), np.arange(10, 20))
    again = src.candidates([7], 20)
    np.testing.assert_array_equal(first[0], again[0])
    acc, seen, _ = _kernels._common.scratch(net.n_members)
    resid, queued, _ = _kernels._ppr._scratch_push(net.n_members)
    assert not acc.any() and not seen.any() and not resid.any() and not queued.any()


def test_the_queue_stays_inside_its_own_scratch_row(net):
    """Scratch sets grow apart: after a larger network, the shared rows (est, seen, touched) can
    be longer than the push's own queue. The ring must wrap at the queue's length: here the
    queue is a view of a larger buffer whose tail must stay untouched."""
    a = net.adjacency.tocsr()
    a.sort_indices()
    n = net.n_members
    est, seen, touched = np.zeros(3 * n), np.zeros(3 * n, bool), np.empty(3 * n, np.int64)
    resid, queued = np.zeros(n), np.zeros(n, bool)
    buffer = np.full(3 * n, -7, dtype=np.int64)
    queue = buffer[:n]
    rows = np.arange(20, dtype=np.int64)
    ids, scores = _kernels._common.outputs(len(rows), 30)
    src = PersonalizedPageRankCandidates(epsilon=1e-6).fit(net)
    args = (a.indptr, a.indices, src.eligible_, 0.15, 1e-6, False)
    _kernels._ppr._ppr_serial(rows, *args, est, resid, queued, queue, seen, touched, ids, scores)
    assert (buffer[n:] == -7).all()
    np.testing.assert_array_equal(ids, src.candidates(rows, 30)[0])


def test_pair_scores_keep_the_shape_and_equal_the_candidates_scores(net):
    src = PersonalizedPageRankCandidates().fit(net)
    ids, scores = src.candidates([3, 8], 10)
    got = src.pair_scores(np.array([[3] * 10, [8] * 10]), ids)
    assert got.shape == (2, 10) and got.dtype == np.float32
    np.testing.assert_array_equal(got, scores)
    assert src.pair_scores(np.zeros(0, int), np.zeros(0, int)).shape == (0,)
    with pytest.raises(ValueError, match="outside"):
        src.pair_scores([0], [net.n_members])


def test_a_member_without_connections_gets_no_candidates():
    members = pd.DataFrame({"member_id": list("abcd")})
    connections = pd.DataFrame({"member_a": ["a", "b"], "member_b": ["b", "c"]})
    interests = pd.DataFrame({"member_id": list("abcd"), "interest": "x"})
    net = network_from_frames(members, interests, connections)
    ids, scores = PersonalizedPageRankCandidates().fit(net).candidates(net.rows_of(["d", "a"]), 3)
    assert (ids[0] == -1).all() and np.isneginf(scores[0]).all()
    assert net.member_ids[ids[1][0]] == "c"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"normalize": "sqrt"}, "normalize"),
    ],
)
def test_bad_parameters_fail_in_fit(net, params, message):
    src = PersonalizedPageRankCandidates(**params)  # stored, not checked
    with pytest.raises(ValueError, match=message):
        src.fit(net)
