import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys._fair_ranking import adjusted_alpha, fail_probability, fair_select, mtable


def test_mtable_matches_the_paper_for_p_half_alpha_tenth():
    # Zehlike et al., CIKM 2017, table of m_{alpha,p}(k) for alpha = 0.1, row p = 0.5, k = 1..12
    assert mtable(12, 0.5, 0.1, adjust=False).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4]


@pytest.mark.parametrize(
    "k, p, alpha, expected",
    [
        (20, 0.25, 0.1, [0] * 8 + [1] * 6 + [2] * 5 + [3]),
        (30, 0.3, 0.05, [0] * 8 + [1] * 5 + [2] * 5 + [3] * 5 + [4] * 4 + [5] * 3),
    ],
)
def test_unadjusted_mtable_known_answers(k, p, alpha, expected):
    # the same figures as the reference implementation's published tests
    assert mtable(k, p, alpha, adjust=False).tolist() == expected


def test_fail_probability_exact_values():
    # only prefix 9 and 10 ask for one protected: fails iff the first 9 hold none
    assert fail_probability(np.array([0] * 8 + [1, 1]), 0.2) == pytest.approx(0.8**9)
    assert fail_probability(np.array([0] * 8 + [1] * 7 + [2] * 5), 0.25) == pytest.approx(
        0.10515247355215251
    )
    assert fail_probability(np.zeros(20, int), 0.3) == 0.0


def test_fail_probability_agrees_with_simulation():
    table = mtable(20, 0.4, 0.1, adjust=False)
    rng = np.random.default_rng(0)
    draws = rng.random((200_000, 20)) < 0.4
    failed = (np.cumsum(draws, axis=1) < table).any(axis=1).mean()
    assert fail_probability(table, 0.4) == pytest.approx(failed, abs=0.005)


@pytest.mark.parametrize(
    "k, p, alpha", [(20, 0.25, 0.1), (20, 0.5, 0.1), (30, 0.3, 0.05), (50, 0.44, 0.1)]
)
def test_adjusted_table_keeps_overall_failure_at_alpha_and_is_tightest_such(k, p, alpha):
    a_c = adjusted_alpha(k, p, alpha)
    table = mtable(k, p, alpha)
    assert 0 < a_c <= alpha
    assert fail_probability(table, p) <= alpha
    # the unadjusted test rejects fair rankings more often than alpha (why the paper adjusts)
    assert fail_probability(mtable(k, p, alpha, adjust=False), p) > alpha
    # a slightly larger alpha_c already gives a stricter table that breaks the bound
    stricter = mtable(k, p, min(a_c * 1.001 + 1e-12, alpha), adjust=False)
    assert (stricter >= table).all()
    if (stricter > table).any():
        assert fail_probability(stricter, p) > alpha


def test_adjusted_table_known_answers():
    assert adjusted_alpha(10, 0.2, 0.15) == 0.15  # the unadjusted table already fails < alpha
    expected = [0] * 10 + [1] * 6 + [2] * 5 + [3] * 4 + [4] * 5
    assert mtable(30, 0.3, 0.05).tolist() == expected
    assert fail_probability(np.array(expected), 0.3) == pytest.approx(0.0487773079717, abs=1e-9)


def test_fair_select_known_answer_on_hand_made_pool():
    ids = np.array([[10, 11, 12, 13, 14, 15, -1]], np.int32)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 9.0]], np.float32)  # padding is ignored
    prot = np.array([[False, False, False, True, False, True, True]])
    table = np.array([0, 1, 1, 1, 2])
    out, sc, ok = fair_select(ids, scores, prot, 5, p=0.5, table=table)
    # 1: best (10); 2: needs one protected -> 13; 3: best left (11); 4: best (12); 5: needs two ->
    # 15
    assert out.tolist() == [[10, 13, 11, 12, 15]]
    np.testing.assert_allclose(sc, [[0.9, 0.6, 0.8, 0.7, 0.4]])
    assert ok.tolist() == [True]
    # without any requirement it is the plain top-k
    out, _, ok = fair_select(ids, scores, prot, 5, p=0.5, table=np.zeros(5, int))
    assert out.tolist() == [[10, 11, 12, 13, 14]]


def test_fair_select_flags_rows_whose_pool_is_short_and_pads():
    ids = np.array([[1, 2, 3], [4, 5, -1]], np.int32)
    scores = np.array([[0.3, 0.2, 0.1], [0.5, 0.4, 0.0]], np.float32)
    prot = np.array([[False, False, False], [False, True, False]])
    out, sc, ok = fair_select(ids, scores, prot, 4, p=0.5, table=np.array([1, 1, 1, 1]))
    assert out.tolist() == [[1, 2, 3, -1], [5, 4, -1, -1]]
    assert ok.tolist() == [False, True]
    assert np.isneginf(sc[1, 2:]).all()


def test_fair_select_ties_go_to_smaller_id():
    ids = np.array([[7, 3, 5]], np.int32)
    scores = np.ones((1, 3), np.float32)
    out, _, _ = fair_select(ids, scores, np.zeros((1, 3), bool), 3, p=0.5, table=np.zeros(3, int))
    assert out.tolist() == [[3, 5, 7]]


@st.composite
def pools(draw):
    rows = draw(st.integers(1, 5))
    width = draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    ids = np.stack([rng.permutation(100)[:width] for _ in range(rows)]).astype(np.int32)
    ids = np.where(rng.random((rows, width)) < 0.15, -1, ids)
    scores = rng.random((rows, width)).astype(np.float32)
    prot = rng.random((rows, width)) < draw(st.floats(0.0, 1.0))
    k = draw(st.integers(1, 25))
    p = draw(st.floats(0.05, 0.95))
    return ids, scores, prot, k, p


@settings(max_examples=150, deadline=None)
@given(pools())
def test_every_prefix_meets_m_when_the_pool_allows(pool):
    ids, scores, prot, k, p = pool
    table = mtable(k, p, 0.1)
    out, sc, ok = fair_select(ids, scores, prot, k, p=p)
    lookup = {}
    for r in range(len(ids)):
        valid = ids[r] >= 0
        lookup = dict(zip(ids[r][valid].tolist(), prot[r][valid].tolist()))
        slate = [c for c in out[r].tolist() if c >= 0]
        # a slate of distinct pool members, as long as the pool allows
        assert len(slate) == len(set(slate)) == min(k, int(valid.sum()))
        assert set(slate) <= set(lookup)
        counts = np.cumsum([lookup[c] for c in slate])
        n_prot = int((prot[r] & valid).sum())
        n_slate = len(slate)
        pool_allows = all(min(n_prot, i + 1) >= table[i] for i in range(n_slate))
        meets = all(counts[i] >= table[i] for i in range(n_slate))
        assert ok[r] == meets
        if pool_allows:
            assert meets
        # within each kind the slate keeps score order (FA*IR never reorders a group)
        for kind in (True, False):
            s = [
                float(sc[r, i]) for i, c in enumerate(out[r]) if c >= 0 and lookup[int(c)] == kind
            ]
            assert s == sorted(s, reverse=True)
