"""The relevance–equality frontier of a set of pools: the best recall any policy can keep at a
bound on the exposure Gini, and a deterministic policy that prices exposure.

:func:`frontier_point` maximises ``Σ_r Σ_j p_rj x_rj − λ · Gini(exposure(x))`` over mixes of
slates ``x_r ∈ conv{slates of k from pool r}`` by Frank-Wolfe (Jaggi, ICML 2013): each step
ranks every pool by ``p − λ ∇Gini`` (the gradient of the population Gini in a member's exposure
is ``(2 rank − n − 1) / (n Σ e)`` up to a constant, so the price is their rank in exposure) and
moves ``2 / (t + 2)`` of the way to those slates. The iterate is a mix of slates (a randomised
policy), which can only do better than any deterministic one, so its recall at the bound is an
upper bound on what a re-ranker of the same pools can keep. :func:`bisect_price` finds the
smallest price λ that meets a Gini bound. :func:`priced_slates` is a deterministic policy:
exposure-priced rounds over preference lists, with capacity and the +1 quota.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from numba import njit

from recsys import metrics as m

__all__ = ["bisect_price", "frontier_at", "frontier_point", "priced_slates", "top_mask"]


def top_mask(valid: np.ndarray, adjusted: np.ndarray, k: int) -> np.ndarray:
    """(R, P) 0/1: each row's k best of ``adjusted`` among its valid entries."""
    a = np.where(valid, adjusted, -np.inf)
    kk = min(k, a.shape[1])
    top = np.argpartition(-a, kk - 1, axis=1)[:, :kk]
    out = np.zeros(a.shape)
    np.put_along_axis(out, top, 1.0, axis=1)
    out[~valid] = 0.0
    return out


@njit(cache=True)
def _fenwick_add(tree, i, d):
    i += 1
    while i < len(tree):
        tree[i] += d
        i += i & (-i)


@njit(cache=True)
def _fenwick_below(tree, i):
    total = 0
    while i > 0:
        total += tree[i]
        i -= i & (-i)
    return total


@njit(cache=True)
def priced_slates(prefs, scores, capacity, k, inside, max_inside, lam):
    """(R, k) slates by exposure-priced rounds: in round t every row in turn takes its best
    untaken preference by ``score − lam · (2 · #members shown less + #shown as often − n) / n``
    (the Gini's gradient in that member's exposure, up to scale), below ``capacity`` and within
    the row's ``max_inside`` quota of ``inside`` candidates. Counts of members per exposure
    value sit in a Fenwick tree, so a price costs O(log max capacity)."""
    n_rows, width = prefs.shape
    n = len(capacity)
    top = 1
    for c in range(n):
        top = max(top, min(capacity[c], n_rows) + 1)
    exposure = np.zeros(n, dtype=np.int64)
    at = np.zeros(top + 1, dtype=np.int64)
    at[0] = n
    tree = np.zeros(top + 2, dtype=np.int64)
    _fenwick_add(tree, 0, n)
    out = np.full((n_rows, k), -1, dtype=np.int32)
    taken = np.zeros((n_rows, width), dtype=np.bool_)
    n_inside = np.zeros(n_rows, dtype=np.int64)
    for t in range(k):
        for r in range(n_rows):
            best, best_value = -1, -np.inf
            for j in range(width):
                c = prefs[r, j]
                if c < 0:
                    break
                v = exposure[c]
                if (
                    taken[r, j]
                    or v >= capacity[c]
                    or (inside[r, j] and n_inside[r] >= max_inside[r])
                ):
                    continue
                value = scores[r, j] - lam * (2.0 * _fenwick_below(tree, v) + at[v] - n) / n
                if value > best_value:
                    best, best_value = j, value
            if best < 0:
                continue
            c = prefs[r, best]
            taken[r, best] = True
            out[r, t] = c
            n_inside[r] += inside[r, best]
            v = exposure[c]
            at[v] -= 1
            at[v + 1] += 1
            _fenwick_add(tree, v, -1)
            _fenwick_add(tree, v + 1, 1)
            exposure[c] = v + 1
    return out


def frontier_point(p, ids, valid, hits, n_relevant, n_members, k, lam, iterations):
    """Frank-Wolfe mix of slates for one λ: (recall, gini) of the mix."""
    safe = np.maximum(ids, 0)
    x = top_mask(valid, p, k)
    for t in range(iterations):
        exposure = np.bincount(ids[valid], weights=x[valid], minlength=n_members)
        price = (2.0 * scipy.stats.rankdata(exposure) - n_members - 1.0) / n_members
        step = top_mask(valid, p - lam * price[safe], k)
        gamma = 2.0 / (t + 3.0)
        x = (1.0 - gamma) * x + gamma * step
    exposure = np.bincount(ids[valid], weights=x[valid], minlength=n_members)
    recall = float(np.mean((x * hits).sum(axis=1) / n_relevant))
    return recall, m.gini(exposure)


def bisect_price(point, gini_cap, lam_hi, steps):
    """The smallest λ (to ``steps`` halvings) whose ``point(λ) = (result, gini)`` meets
    ``gini_cap``:
    returns (result, gini, λ). The bracket doubles from ``lam_hi`` until the bound is met."""
    lo, hi = 0.0, lam_hi
    result, gini = point(hi)
    while gini > gini_cap and hi < 1e3:
        lo, hi = hi, hi * 2
        result, gini = point(hi)
    best = (result, gini, hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        result, gini = point(mid)
        if gini <= gini_cap:
            hi, best = mid, (result, gini, mid)
        else:
            lo = mid
    return best


def frontier_at(p, gini_cap, lam_hi, steps, **kw):
    """Bisect λ for the largest recall whose mix meets ``gini_cap``; returns (recall, gini, λ)."""
    return bisect_price(lambda lam: frontier_point(p, lam=lam, **kw), gini_cap, lam_hi, steps)
