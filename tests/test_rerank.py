import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsys import BridgeBonusReranker, plus_one_select, top_k


def test_top_k_known_answer_with_ties_and_padding():
    ids = np.array([[5, 3, 9, -1]], np.int32)
    scores = np.array([[0.2, 0.5, 0.5, np.inf]], np.float32)  # padding score is ignored
    out_ids, out_scores = top_k(ids, scores, 3)
    assert out_ids.tolist() == [[3, 9, 5]]
    np.testing.assert_allclose(out_scores, [[0.5, 0.5, 0.2]])
    out_ids, out_scores = top_k(ids, scores, 6)
    assert out_ids.tolist() == [[3, 9, 5, -1, -1, -1]]
    assert np.isneginf(out_scores[0, 3:]).all()


@st.composite
def pools(draw):
    rows = draw(st.integers(1, 6))
    width = draw(st.integers(1, 12))
    ids = np.stack(
        [
            np.random.default_rng(draw(st.integers(0, 10_000))).permutation(50)[:width]
            for _ in range(rows)
        ]
    ).astype(np.int32)
    pad = draw(arrays(bool, (rows, width)))
    ids = np.where(pad, -1, ids)
    scores = draw(arrays(np.float32, (rows, width), elements=st.floats(0.0625, 1.0, width=32)))
    outside = draw(arrays(bool, (rows, width)))
    required = draw(arrays(bool, (rows,)))
    k = draw(st.integers(1, 10))
    return ids, scores, outside, required, k


@settings(max_examples=150, deadline=None)
@given(pools(), st.booleans())
def test_top_k_equals_a_lexsort_on_both_threading_paths(pool, parallel):
    import recsys._kernels._common as kernels

    ids, scores, _, _, k = pool
    scores = np.round(scores * 4) / 4  # plenty of ties
    old = kernels.PARALLEL_MIN_MEMBERS
    kernels.PARALLEL_MIN_MEMBERS = 0 if parallel else 10**9
    try:
        got_ids, got_scores = top_k(ids, scores, k)
    finally:
        kernels.PARALLEL_MIN_MEMBERS = old
    for r in range(len(ids)):
        valid = ids[r] >= 0
        order = np.lexsort((ids[r][valid], -scores[r][valid]))[:k]
        want = ids[r][valid][order]
        assert (
            got_ids[r][: len(want)].tolist() == want.tolist()
            and (got_ids[r][len(want) :] == -1).all()
        )
        np.testing.assert_array_equal(got_scores[r][: len(want)], scores[r][valid][order])


@settings(max_examples=200, deadline=None)
@given(pools())
def test_plus_one_properties(pool):
    ids, scores, outside, required, k = pool
    out_ids, out_scores = plus_one_select(ids, scores, outside, required, k)
    assert out_ids.shape == (ids.shape[0], k)
    for r in range(ids.shape[0]):
        valid = ids[r] >= 0
        slate = out_ids[r][out_ids[r] >= 0]
        # a subset of the pool, no duplicates, as full as the pool allows
        assert set(slate.tolist()) <= set(ids[r][valid].tolist())
        assert len(slate) == len(set(slate.tolist())) == min(k, valid.sum())
        # sorted by score
        s = out_scores[r][out_ids[r] >= 0]
        assert (np.diff(s) <= 0).all()
        is_out = dict(zip(ids[r][valid].tolist(), outside[r][valid].tolist()))
        n_out = sum(is_out[x] for x in slate.tolist())
        n_in = len(slate) - n_out
        if required[r]:
            available_out = int((outside[r] & valid).sum())
            if available_out >= (len(slate) + 1) // 2:
                assert n_out >= n_in  # the bound holds whenever it is feasible
            else:
                assert n_out == available_out  # infeasible: every outside candidate is used
        else:
            plain, _ = top_k(ids[r : r + 1], scores[r : r + 1], k)
            assert out_ids[r].tolist() == plain[0].tolist()


def test_plus_one_known_answer():
    ids = np.array([[1, 2, 3, 4, 5, 6]], np.int32)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]], np.float32)
    outside = np.array([[False, False, False, False, True, True]])
    out, _ = plus_one_select(ids, scores, outside, np.array([True]), 4)
    assert out.tolist() == [[1, 2, 5, 6]]
    out, _ = plus_one_select(ids, scores, outside, np.array([False]), 4)
    assert out.tolist() == [[1, 2, 3, 4]]


def _reranker(**kw):
    n = 6
    return BridgeBonusReranker(**kw).fit(
        communities=np.array([0, 0, 0, 1, 1, 2]),
        degrees=np.array([10, 50, 3, 3, 3, 3]),
        member_spans_one_community=np.zeros(n, bool),
        pledged=np.array([True, False, False, False, False, False]),
    )


def test_bridge_bonus_promotes_cross_community_pairs():
    ids = np.array([[1, 2, 3, 4]], np.int32)
    scores = np.array([[0.50, 0.45, 0.40, 0.20]], np.float32)
    plain, _ = _reranker(bridge_weight=0.0, degree_penalty=0.0).rerank(
        np.array([0]), ids, scores, 4
    )
    assert plain.tolist() == [[1, 2, 3, 4]]
    bridged, _ = _reranker(bridge_weight=0.5, degree_penalty=0.0, bonus="log").rerank(
        np.array([0]), ids, scores, 4
    )
    assert bridged.tolist() == [[3, 1, 2, 4]]  # 0.40 · e^0.5 = 0.66, 0.20 · e^0.5 = 0.33
    # linear: + 0.6 × 0.2 = 0.12 lifts 3 (0.52) above 1, and 4 (0.32) above nothing
    linear, adjusted = _reranker(bridge_weight=0.6, degree_penalty=0.0, score_scale=0.2).rerank(
        np.array([0]), ids, scores, 4
    )
    assert linear.tolist() == [[3, 1, 2, 4]]
    np.testing.assert_allclose(adjusted, [[0.52, 0.50, 0.45, 0.32]], rtol=1e-6)


def test_linear_bonus_lifts_only_close_cross_candidates():
    """The additive bonus moves a cross-community candidate only past what scores close to it;
    the multiplicative one lifts a weak one past strong ones."""
    ids = np.array([[1, 2, 5]], np.int32)  # 5 is in another community than member 0
    scores = np.array([[0.30, 0.28, 0.10]], np.float32)
    log_order, _ = _reranker(bridge_weight=1.2, degree_penalty=0.0, bonus="log").rerank(
        np.array([0]), ids, scores, 3
    )
    lin_order, _ = _reranker(bridge_weight=1.2, degree_penalty=0.0, score_scale=0.1).rerank(
        np.array([0]), ids, scores, 3
    )
    assert log_order.tolist() == [[5, 1, 2]]  # 0.10 · e^1.2 = 0.33
    assert lin_order.tolist() == [[1, 2, 5]]  # 0.10 + 0.12 = 0.22


def test_degree_penalty_damps_popular_members():
    ids = np.array([[1, 2]], np.int32)
    scores = np.array([[0.5, 0.45]], np.float32)
    out, _ = _reranker(bridge_weight=0.0, degree_penalty=0.2).rerank(np.array([0]), ids, scores, 2)
    assert out.tolist() == [[2, 1]]  # member 1 has 50 connections


def test_small_networks_get_a_stronger_bridge_bonus():
    rr = BridgeBonusReranker(bridge_weight=0.3, degree_penalty=0.0).fit(
        communities=np.array([0, 0, 1, 1]),
        degrees=np.array([2, 30, 2, 2]),
        member_spans_one_community=np.zeros(4, bool),
        pledged=np.zeros(4, bool),
    )
    ids = np.array([[2, 3]], np.int32)
    adj_small = rr.adjusted_scores(np.array([0]), ids, np.array([[0.5, 0.5]], np.float32))
    adj_large = rr.adjusted_scores(np.array([1]), ids, np.array([[0.5, 0.5]], np.float32))
    assert (adj_small > adj_large).all()


def test_pledged_members_get_the_plus_one_balance():
    rr = _reranker(bridge_weight=0.0, degree_penalty=0.0, plus_one="pledged")
    ids = np.array([[1, 2, 3, 4], [0, 2, 3, 4]], np.int32)
    scores = np.array([[0.9, 0.8, 0.2, 0.1]] * 2, np.float32)
    outside = np.array([[False, False, True, True]] * 2)
    out, _ = rr.rerank(np.array([0, 1]), ids, scores, 2, outside=outside)
    assert out[0].tolist() == [1, 3]  # pledged: one outside of two
    assert out[1].tolist() == [0, 2]  # not pledged: plain top 2
    out_all, _ = _reranker(bridge_weight=0.0, degree_penalty=0.0, plus_one="all").rerank(
        np.array([0, 1]), ids, scores, 2, outside=outside
    )
    assert out_all[1].tolist() == [0, 3]


# --------------------------------------------------------------------- prefix bounds, capacity
from recsys import PreferenceLists, assign_slates  # noqa: E402
from recsys._assignment import _capacity_rounds, _fill_floor, plus_one_quota  # noqa: E402
from recsys._rerank import SlateReranker, prefix_bounds_select  # noqa: E402


@st.composite
def grouped_pools(draw):
    ids, scores, _, _, k = draw(pools())
    n_groups = draw(st.integers(1, 3))
    groups = draw(arrays(np.int64, ids.shape, elements=st.integers(0, n_groups - 1)))
    raw = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=n_groups, max_size=n_groups)))
    return ids, scores, groups, raw / raw.sum(), k


@settings(max_examples=150, deadline=None)
@given(grouped_pools(), st.sampled_from([0.0, 0.1]))
def test_prefix_bounds_properties(pool, tolerance):
    ids, scores, groups, shares, k = pool
    out, out_scores, feasible = prefix_bounds_select(
        ids, scores, groups, shares, k, tolerance=tolerance
    )
    group_of = {}
    for r in range(len(ids)):
        group_of = dict(zip(ids[r].tolist(), groups[r].tolist()))
        valid = ids[r] >= 0
        slate = out[r][out[r] >= 0]
        assert set(slate.tolist()) <= set(ids[r][valid].tolist())
        assert len(slate) == len(set(slate.tolist())) == min(k, valid.sum())
        assert (out[r][: len(slate)] >= 0).all()  # no gaps
        if feasible[r]:
            for i in range(1, len(slate) + 1):
                counts = np.bincount([group_of[x] for x in slate[:i]], minlength=len(shares))
                assert (counts >= np.floor((shares - tolerance) * i + 1e-9)).all()
                assert (counts <= np.ceil((shares + tolerance) * i - 1e-9)).all()


def test_prefix_bounds_known_answer_and_infeasible_flag():
    ids = np.array([[1, 2, 3, 4, 5, 6]], np.int32)
    s = np.array([[0.9, 0.8, 0.7, 0.6, 0.2, 0.1]], np.float32)
    g = np.array([[0, 0, 0, 0, 1, 1]])
    out, _, ok = prefix_bounds_select(ids, s, g, np.array([0.5, 0.5]), 4)
    assert out.tolist() == [[1, 5, 2, 6]] and ok.tolist() == [True]
    # the pool has only two of group 1: a slate of 6 at 50/50 is infeasible, and says so
    out, _, ok = prefix_bounds_select(ids, s, g, np.array([0.5, 0.5]), 6)
    assert sorted(out[0].tolist()) == [1, 2, 3, 4, 5, 6] and ok.tolist() == [False]
    # one group only: plain ranking
    out, _, ok = prefix_bounds_select(ids, s, np.zeros_like(g), np.array([1.0]), 3)
    assert out.tolist() == [[1, 2, 3]] and ok.all()


@settings(max_examples=100, deadline=None)
@given(pools(), st.integers(1, 4), st.integers(0, 3))
def test_capacity_assignment_properties(pool, cap, floor):
    ids, scores, outside, required, k = pool
    capacity = np.full(50, cap)
    max_inside = plus_one_quota(ids, outside, required, k)
    floor = min(floor, k)
    got, got_scores = assign_slates(
        PreferenceLists(ids, scores, outside),
        k=k,
        capacity=capacity,
        required=required,
        floor_slots=floor,
    )
    finite = np.where(got >= 0, got_scores, np.nan)
    assert not (np.diff(finite, axis=1) > 0).any()  # scores agree with the slate's order
    counts = np.bincount(got[got >= 0], minlength=50)
    assert (counts <= capacity).all()  # no member above capacity
    for r in range(len(ids)):
        slate = got[r][got[r] >= 0]
        assert (got[r][: len(slate)] >= 0).all()  # no gaps
        assert set(slate.tolist()) <= set(ids[r][ids[r] >= 0].tolist())
        assert len(slate) == len(set(slate.tolist()))
        inside = dict(zip(ids[r].tolist(), (~outside[r]).tolist()))
        assert sum(inside[x] for x in slate.tolist()) <= max_inside[r]


def _rounds_reference(preferences, scores, capacity, k, inside, max_inside):
    """The capacity assignment's rounds as plain numpy (its implementation before it was
    compiled).
    """
    n_rows, width = preferences.shape
    remaining = np.asarray(capacity, dtype=np.int64).copy()
    out_ids = np.full((n_rows, k), -1, dtype=np.int32)
    out_scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    filled, n_inside, ptr = (np.zeros(n_rows, dtype=np.int64) for _ in range(3))
    rows = np.arange(n_rows)
    while True:
        active = (filled < k) & (ptr < width)
        if active.any():
            active[active] = preferences[rows[active], ptr[active]] >= 0
        if not active.any():
            break
        skip = active.copy()
        skip[active] = inside[rows[active], ptr[active]] & (n_inside[active] >= max_inside[active])
        ptr[skip] += 1
        active &= ~skip
        if not active.any():
            continue
        r = rows[active]
        cand = preferences[r, ptr[r]].astype(np.int64)
        sc = scores[r, ptr[r]]
        ptr[r] += 1
        order = np.lexsort((r, -sc, cand))
        cand_s, r_s, sc_s = cand[order], r[order], sc[order]
        rank = np.arange(len(cand_s)) - np.searchsorted(cand_s, cand_s, side="left")
        accept = rank < remaining[cand_s]
        ra, ca = r_s[accept], cand_s[accept]
        out_ids[ra, filled[ra]] = ca
        out_scores[ra, filled[ra]] = sc_s[accept]
        filled[ra] += 1
        n_inside[ra] += inside[ra, ptr[ra] - 1]
        np.subtract.at(remaining, ca, 1)
    return out_ids, out_scores


@settings(max_examples=150, deadline=None)
@given(pools(), st.integers(0, 4), st.booleans())
def test_compiled_capacity_rounds_equal_the_numpy_rounds(pool, cap, coarse):
    ids, scores, outside, required, k = pool
    if coarse:  # many equal scores: ties go to the lower row
        scores = np.where(ids >= 0, np.round(scores, 1), -np.inf).astype(np.float32)
    capacity = np.random.default_rng(cap).integers(0, cap + 1, 50)
    max_inside = np.where(required, k // 2, k)
    got = _capacity_rounds(ids, scores, capacity, k, inside=~outside, max_inside=max_inside)
    want = _rounds_reference(ids, scores, capacity, k, ~outside, max_inside)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_compiled_capacity_rounds_equal_the_numpy_rounds_under_contention():
    rng = np.random.default_rng(2)
    ids = np.stack([rng.permutation(12) for _ in range(400)]).astype(np.int32)
    ids[rng.random(ids.shape) < 0.05] = -1
    scores = np.round(rng.random(ids.shape), 2).astype(np.float32)
    inside, max_inside = rng.random(ids.shape) < 0.5, rng.integers(0, 5, 400)
    capacity = rng.integers(0, 150, 12)
    got = _capacity_rounds(ids, scores, capacity, 5, inside=inside, max_inside=max_inside)
    want = _rounds_reference(ids, scores, capacity, 5, inside, max_inside)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert (
        np.bincount(got[0][got[0] >= 0], minlength=12) == np.minimum(capacity, 400)
    ).sum() > 0  # some are filled


def test_last_places_go_to_the_least_exposed():
    prefs = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 5, 6, 7]], np.int32)
    s = np.tile(np.array([0.9, 0.8, 0.7, 0.6], np.float32), (3, 1))
    # first places by preference (1 three times), the last to whoever has been shown least,
    # ties to the earlier preference, one row per round
    lists = PreferenceLists(prefs, s, np.zeros(prefs.shape, bool))
    nobody = np.zeros(3, bool)
    got, got_s = assign_slates(
        lists, k=2, capacity=np.full(10, 10), required=nobody, floor_slots=1
    )
    assert got.tolist() == [[1, 2], [1, 3], [1, 5]]
    # scores as assigned, made non-increasing along the slate
    np.testing.assert_allclose(got_s, [[0.9, 0.8], [0.9, 0.7], [0.9, 0.8]], rtol=1e-6)
    # capacity holds in the last places too, and the +1 quota: row 0 (required, one outside
    # candidate in its list) may take one inside pick
    capacity = np.full(10, 10)
    capacity[2] = 0
    inside = np.array([[True, True, False, True]] * 3)
    balanced = PreferenceLists(prefs, s, ~inside)
    required = np.array([True, False, False])
    got, _ = assign_slates(balanced, k=2, capacity=capacity, required=required, floor_slots=1)
    assert got.tolist() == [[1, 3], [1, 4], [1, 5]]
    # nothing left within floor_depth of the list: the least exposed of the rest of it
    got, _ = assign_slates(
        lists, k=3, capacity=np.full(10, 10), required=nobody, floor_slots=2, floor_depth=1
    )
    assert got.tolist() == [[1, 2, 4], [1, 3, 2], [1, 5, 6]]
    with pytest.raises(ValueError, match="floor_slots"):
        assign_slates(lists, k=2, capacity=np.full(10, 10), required=nobody, floor_slots=3)


@settings(max_examples=60, deadline=None)
@given(pools(), st.integers(1, 3), st.booleans())
def test_least_exposed_fill_of_a_few_rows_equals_the_fill_over_every_member(
    pool, floor, scalar_capacity
):
    ids, scores, outside, required, k = pool
    floor = min(floor, k)
    order = np.argsort(-np.where(ids >= 0, scores, -np.inf), axis=1, kind="stable")
    prefs, pref_scores = np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)
    inside = ~np.take_along_axis(outside, order, 1)
    head, head_scores = prefs[:, : k - floor], pref_scores[:, : k - floor]
    shown = np.random.default_rng(int(np.abs(ids).sum())).integers(0, 4, 50).astype(float)
    capacity = np.inf if scalar_capacity else np.where(np.arange(50) % 7 == 0, 1.0, np.inf)
    kw = dict(inside=inside, max_inside=np.where(required, k // 2, k), depth=2 * k)
    small = _fill_floor(
        prefs, pref_scores, capacity, head, head_scores, k, exposure=shown, **kw
    )  # 50 members: all of them
    many = np.zeros(200_000)
    many[:50] = shown
    big_capacity = (
        capacity
        if scalar_capacity
        else np.concatenate([capacity, np.full(len(many) - 50, np.inf)])
    )
    big = _fill_floor(
        prefs, pref_scores, big_capacity, head, head_scores, k, exposure=many, **kw
    )  # only those named
    np.testing.assert_array_equal(small[0], big[0])
    np.testing.assert_array_equal(small[1], big[1])
    assert (many[:50] == shown).all()  # the caller's counts are not changed


def test_capacity_assignment_prefers_higher_scores_when_full():
    prefs = np.array([[7, 1], [7, 2], [7, 3]], np.int32)
    s = np.array([[0.5, 0.1], [0.9, 0.1], [0.7, 0.1]], np.float32)
    lists = PreferenceLists(prefs, s, np.zeros(prefs.shape, bool))
    got, _ = assign_slates(lists, k=1, capacity=np.full(10, 2), required=np.zeros(3, bool))
    assert got.ravel().tolist() == [1, 7, 7]


def test_slate_reranker_privacy_by_default_reads_no_sensitive_attribute():
    import inspect

    # the default re-ranker is fitted from structural arrays alone: no sensitive input exists
    params = inspect.signature(SlateReranker.fit).parameters
    assert not any("sensitive" in p or "gender" in p for p in params)


def test_pledged_preferences_hold_enough_outside_candidates():
    # the best 4 of 8 are all inside; a pledged member's list of 4 still holds 2 outside
    rr = SlateReranker(
        bridge_weight=0.0, degree_penalty=0.0, bound_tolerance=None, plus_one="all"
    ).fit(
        communities=np.zeros(10, int),
        degrees=np.full(10, 8),
        member_spans_one_community=np.zeros(10, bool),
        pledged=np.zeros(10, bool),
        group_codes=np.zeros(10, int),
        group_shares=np.array([1.0]),
    )
    ids = np.array([[1, 2, 3, 4, 5, 6, 7, 8]], np.int32)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]], np.float32)
    outside = np.array([[False] * 4 + [True] * 4])
    prefs, _, _ = rr.preferences(np.array([0]), ids, scores, 4, outside=outside)
    assert prefs.tolist() == [[1, 2, 5, 6]]
    slate, sc = rr.rerank(np.array([0]), ids, scores, 2, outside=outside)
    assert slate.tolist() == [[1, 5]]
    assert (np.diff(sc[0]) <= 0).all()


def test_least_exposed_places_go_to_smaller_networks_among_the_equally_shown():
    prefs = np.array([[1, 2, 3, 4]], np.int32)
    s = np.array([[0.9, 0.8, 0.7, 0.6]], np.float32)
    lists = PreferenceLists(prefs, s, np.zeros(prefs.shape, bool))
    common = dict(k=2, capacity=np.full(10, 10), required=np.zeros(1, bool), floor_slots=1)
    got, _ = assign_slates(lists, **common)
    assert got.tolist() == [[1, 2]]  # no tie-break: the earlier preference
    degrees = np.array([0, 50, 40, 3, 30, 0, 0, 0, 0, 0])
    got, _ = assign_slates(lists, **common, tiebreak=degrees)
    assert got.tolist() == [[1, 3]]  # member 3, with 3 connections, among those never shown
