"""FA*IR: top-k ranking with a minimum share of a protected group at every prefix.

Zehlike, Bonchi, Castillo, Hajian, Megahed & Baeza-Yates, "FA*IR: A Fair Top-k Ranking
Algorithm", CIKM 2017. A ranking passes the *ranked group fairness* test when, at every prefix
length ``i``, it holds at least ``m(i)`` protected candidates, where ``m(i)`` is the
``alpha``-quantile of Binomial(i, p): the fewest protected candidates a fair coin with success
``p`` would give at that length except with probability ``alpha``. Testing all ``k`` prefixes
at level ``alpha`` rejects more than a share ``alpha`` of fair rankings, so the paper corrects
the level: :func:`adjusted_alpha` finds the per-prefix ``alpha_c`` whose table rejects fair
rankings with probability at most ``alpha`` overall (computed exactly, see
:func:`fail_probability`).

:func:`fair_select` builds the slates, vectorised over members: at each position take the best
protected candidate left if the prefix so far holds fewer than ``m(i)``, else the best
candidate left. The PyPI package ``fairsearchcore`` (last release 2019) implements the same
algorithm one query at a time over Python objects, and its adjusted table fails on current
Python; hence this module.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.stats import binom

__all__ = ["mtable", "fail_probability", "adjusted_alpha", "fair_select"]


def _check(k: int, p: float, alpha: float) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _raw_mtable(k: int, p: float, alpha: float) -> np.ndarray:
    # ppf = the smallest m with P(X <= m) >= alpha; never below 0 (ppf(alpha) is -1 only for
    # alpha=0)
    return np.maximum(binom.ppf(alpha, np.arange(1, k + 1), p), 0).astype(np.int64)


def fail_probability(table: np.ndarray, p: float) -> float:
    """Probability that a ranking drawn from the fair process fails the test of ``table``.

    The fair process makes each position protected independently with probability ``p``. A
    ranking fails when some prefix ``i`` holds fewer than ``table[i - 1]`` protected
    candidates. Exact, by dynamic programming over (prefix length, protected so far) on the
    rankings that have passed every earlier prefix: O(k²).

    Examples
    --------
    >>> round(fail_probability(np.array([0] * 8 + [1, 1]), 0.2), 6)  # = 0.8 ** 9
    0.134218
    """
    table = np.asarray(table, dtype=np.int64)
    k = len(table)
    alive = np.zeros(k + 1)
    alive[0] = 1.0  # probability mass of (protected count) among rankings not yet failed
    failed = 0.0
    for i in range(k):
        nxt = alive * (1.0 - p)
        nxt[1:] += alive[:-1] * p
        short = min(int(table[i]), k + 1)  # fewer than m(i+1) protected: failed here
        failed += float(nxt[:short].sum())
        nxt[:short] = 0.0
        alive = nxt
    return failed


@lru_cache(maxsize=256)
def adjusted_alpha(k: int, p: float, alpha: float, *, iterations: int = 60) -> float:
    """The per-prefix significance ``alpha_c`` whose table fails fair rankings with prob ≤
    ``alpha``.

    The paper's binary search for the multiple-testing correction. The table changes in steps,
    so the overall failure probability cannot in general equal ``alpha`` exactly; this returns
    the largest ``alpha_c ≤ alpha`` (to ``2**-iterations`` relative precision) whose table's
    :func:`fail_probability` does not exceed ``alpha`` — the conservative side, so a fair ranking
    is rejected with probability at most ``alpha``.
    """
    _check(k, p, alpha)
    if fail_probability(_raw_mtable(k, p, alpha), p) <= alpha:
        return float(alpha)
    lo, hi = (
        0.0,
        float(alpha),
    )  # fail(lo) <= alpha < fail(hi); the all-zero table (lo -> 0) never fails
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mid <= 0.0:
            break
        if fail_probability(_raw_mtable(k, p, mid), p) <= alpha:
            lo = mid
        else:
            hi = mid
    return lo


def mtable(k: int, p: float, alpha: float = 0.1, *, adjust: bool = True) -> np.ndarray:
    """``m(1..k)``: the fewest protected candidates each prefix must hold, shape (k,) int64.

    ``adjust=False`` gives the paper's unadjusted table ``binom.ppf(alpha, i, p)``; ``adjust``
    uses :func:`adjusted_alpha` instead of ``alpha``.

    Examples
    --------
    >>> mtable(12, 0.5, 0.1, adjust=False).tolist()
    [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4]
    """
    _check(k, p, alpha)
    level = adjusted_alpha(k, float(p), float(alpha)) if adjust else alpha
    if level <= 0.0:
        return np.zeros(k, dtype=np.int64)
    return _raw_mtable(k, p, level)


def fair_select(
    candidate_ids: np.ndarray,
    scores: np.ndarray,
    protected: np.ndarray,
    k: int,
    *,
    p: float,
    alpha: float = 0.1,
    adjust: bool = True,
    table: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FA*IR slates of ``k`` for every row of a scored pool.

    Position by position (a loop of ``k`` steps, each vectorised over rows): a row whose slate
    so far holds fewer protected candidates than ``m(i)`` takes its best remaining protected
    candidate; otherwise it takes its best remaining candidate of either kind. Where the pool
    has too few protected candidates the row takes the best left and is flagged infeasible.
    Ties in score go to the smaller id.

    Parameters
    ----------
    candidate_ids : ndarray (R, P) int, -1 padded
    scores : ndarray (R, P) float
    protected : ndarray (R, P) bool, the candidate belongs to the protected group
    k : int
    p : float
        Target share of the protected group (the paper's minimum proportion).
    alpha : float
        Significance of the ranked group fairness test.
    adjust : bool
        Correct ``alpha`` for testing k prefixes (:func:`adjusted_alpha`).
    table : ndarray (k,), optional
        A precomputed ``m(1..k)``; overrides ``p``, ``alpha`` and ``adjust``.

    Returns
    -------
    ids : ndarray (R, k) int32, -1 padded
    scores : ndarray (R, k) float32, -inf padded, in slate order (not necessarily sorted)
    feasible : ndarray (R,) bool, False where some prefix could not meet ``m(i)``

    Examples
    --------
    >>> ids = np.array([[1, 2, 3, 4]])
    >>> s = np.array([[0.9, 0.8, 0.7, 0.6]])
    >>> prot = np.array([[False, False, False, True]])
    >>> out, _, ok = fair_select(ids, s, prot, 3, p=0.5, table=np.array([0, 1, 1]))
    >>> out.tolist(), ok.tolist()
    ([[1, 4, 2]], [True])
    """
    candidate_ids = np.asarray(candidate_ids)
    n_rows, width = candidate_ids.shape
    m = mtable(k, p, alpha, adjust=adjust) if table is None else np.asarray(table, dtype=np.int64)
    if len(m) < k:
        raise ValueError(f"table has {len(m)} entries, need k = {k}")
    valid = candidate_ids >= 0
    key = np.where(valid, np.asarray(scores, dtype=np.float64), -np.inf)
    tie = np.where(valid, candidate_ids, np.iinfo(np.int64).max)
    order = np.lexsort((tie, -key), axis=-1) if width else np.zeros((n_rows, 0), dtype=np.int64)
    ids_s = np.take_along_axis(candidate_ids, order, axis=1)
    sc_s = np.take_along_axis(key, order, axis=1)
    valid_s = np.take_along_axis(valid, order, axis=1)
    prot_s = np.take_along_axis(np.asarray(protected, dtype=bool), order, axis=1) & valid_s
    other_s = valid_s & ~prot_s
    # each kind's positions in score order (a stable sort puts that kind first, best first)
    pos_p = np.argsort(~prot_s, axis=1, kind="stable")
    pos_o = np.argsort(~other_s, axis=1, kind="stable")
    n_p, n_o = prot_s.sum(axis=1), other_s.sum(axis=1)
    ptr_p = np.zeros(n_rows, dtype=np.int64)
    ptr_o = np.zeros(n_rows, dtype=np.int64)
    rows = np.arange(n_rows)
    out_ids = np.full((n_rows, k), -1, dtype=np.int32)
    out_scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    feasible = np.ones(n_rows, dtype=bool)
    last = max(width - 1, 0)
    for i in range(k):
        has_p, has_o = ptr_p < n_p, ptr_o < n_o
        if width == 0 or not (has_p | has_o).any():
            break
        head_p = np.where(has_p, pos_p[rows, np.minimum(ptr_p, last)], width)
        head_o = np.where(has_o, pos_o[rows, np.minimum(ptr_o, last)], width)
        need = ptr_p < m[i]
        take_p = has_p & (need | (head_p < head_o))
        take_o = ~take_p & has_o
        pos = np.where(take_p, head_p, head_o)
        took = take_p | take_o
        out_ids[took, i] = ids_s[rows[took], pos[took]]
        out_scores[took, i] = sc_s[rows[took], pos[took]]
        ptr_p += take_p
        ptr_o += take_o
        feasible &= ~took | (ptr_p >= m[i])  # a filled prefix i holds at least m(i) protected
    return out_ids, out_scores, feasible
