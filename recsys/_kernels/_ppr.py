"""Personalized PageRank from one member by the Andersen–Chung–Lang push, in compiled code.

The PPR vector of member u with teleport probability α over the random walk ``W = D⁻¹A`` is
``π_u = α Σ_k (1 − α)^k e_u W^k``. The push (Andersen, Chung & Lang, FOCS 2006, in the non-lazy
"forward push" form) keeps an estimate ``p`` and a residual ``r`` with
``π_u = p + Σ_v r[v] π_v``; pushing a member v moves ``α r[v]`` into ``p[v]`` and spreads
``(1 − α) r[v]`` evenly over v's connections. It pushes, first in first out (so the result does
not depend on the thread), every member whose residual is at least ``ε · deg(v)``, and always u
and u's connections, whatever their degrees. When none is left, every entry satisfies

    0 ≤ π_u[v] − (p[v] + α r[v]) ≤ ε · deg(v)

(``π_v[t] / deg(t) = π_t[v] / deg(v)`` in an undirected graph bounds ``Σ_v r[v] π_v[t]`` by
``ε deg(t)``; ``α r[v]`` is the part of v's residual that stays at v, as ``π_v[v] ≥ α``; pushing
more than the threshold asks only lowers residuals). The connections scanned are at most
``1 / (α ε)`` — every thresholded push moves at least ``α ε deg(v)`` of the unit mass into
``p`` — plus the two-hop volume ``deg(u) + Σ_{w ∈ N(u)} deg(w)`` of the pushes always made, which
the friends-of-friends source scans too. So ε bounds the time of one member whatever the size of
the network.

Why u's connections are always pushed: with ε fixed, a member of degree d pushes a connection w
only if ``(1 − α) / d ≥ ε deg(w)``. In the Facebook100 network (mean degree 81) α = 0.15 and
ε = 1e-4 then left many two-hop members unreached, and the top 300 held 0.52 of the held-out
connections of 2,000 members (0.75 with the connections always pushed, the same at ε = 3e-4 or
3e-5); in Deezer (mean degree 6) nothing changed.

The kernels follow :mod:`recsys._kernels._sources`: one per-member function over the CSR
adjacency with scratch rows touched only where the push reaches (and left clear), a serial driver
with this thread's scratch and a parallel one over chunks of members.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from recsys._kernels._common import (
    PARALLEL_LOCK,
    cached,
    outputs,
    run,
    scratch,
    select,
    touch,
    use_parallel,
)

__all__ = ["ppr_topn", "ppr_pair_scores"]


@njit(cache=True, nogil=True)
def _push(u, indptr, indices, alpha, eps, est, resid, queued, queue, seen, touched):
    """Push from ``u`` until no residual is at least ``eps · deg``; returns how many members were
    touched (listed in ``touched``), with ``p + α r`` in ``est``. ``resid`` is left clear.

    The queue is a ring over ``queue`` itself: each member is in it at most once, so it never
    holds more than the network's members, and every scratch row is at least that long. Each
    scratch set grows on its own (``recsys._kernels._common.cached``), so ``est`` may be longer
    than ``queue``: a ring as long as ``est`` wrote past the end of ``queue`` once another
    kernel had grown ``est`` on a larger network (a segfault in the test suite)."""
    n = len(queue)
    nt = touch(u, seen, touched, 0)
    resid[u] = 1.0
    queue[0] = u
    queued[u] = True
    head = 0
    size = 1
    first = True  # u's own push: every connection of u is pushed in turn
    while size > 0:
        v = queue[head]
        head = head + 1 if head + 1 < n else 0
        size -= 1
        queued[v] = False
        start, stop = indptr[v], indptr[v + 1]
        if stop == start:  # only u can be here without connections: its walk goes nowhere
            continue
        rv = resid[v]
        est[v] += alpha * rv
        resid[v] = 0.0
        share = (1.0 - alpha) * rv / (stop - start)
        for a in range(start, stop):
            w = indices[a]
            nt = touch(w, seen, touched, nt)
            resid[w] += share
            if not queued[w] and (first or resid[w] >= eps * (indptr[w + 1] - indptr[w])):
                queued[w] = True
                tail = head + size
                queue[tail if tail < n else tail - n] = w
                size += 1
        first = False
    for t in range(nt):
        w = touched[t]
        est[w] += alpha * resid[w]
        resid[w] = 0.0
    return nt


@njit(cache=True, nogil=True)
def _normalise(indptr, touched, nt, est, by_degree):
    if by_degree:
        for t in range(nt):
            w = touched[t]
            est[w] /= max(indptr[w + 1] - indptr[w], 1)


@njit(cache=True, nogil=True)
def _ppr_one(
    u,
    indptr,
    indices,
    eligible,
    alpha,
    eps,
    by_degree,
    est,
    resid,
    queued,
    queue,
    seen,
    touched,
    out_ids,
    out_scores,
):
    nt = _push(u, indptr, indices, alpha, eps, est, resid, queued, queue, seen, touched)
    _normalise(indptr, touched, nt, est, by_degree)
    return select(u, touched, nt, est, seen, indptr, indices, eligible, True, out_ids, out_scores)


@njit(cache=True, nogil=True)
def _ppr_serial(
    rows,
    indptr,
    indices,
    eligible,
    alpha,
    eps,
    by_degree,
    est,
    resid,
    queued,
    queue,
    seen,
    touched,
    out_ids,
    out_scores,
):
    for i in range(len(rows)):
        _ppr_one(
            rows[i],
            indptr,
            indices,
            eligible,
            alpha,
            eps,
            by_degree,
            est,
            resid,
            queued,
            queue,
            seen,
            touched,
            out_ids[i],
            out_scores[i],
        )


@njit(cache=True, parallel=True)
def _ppr_parallel(rows, indptr, indices, eligible, alpha, eps, by_degree, n_chunks, ids, scores):
    n = len(eligible)
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        est = np.zeros(n, dtype=np.float64)
        resid = np.zeros(n, dtype=np.float64)
        queued = np.zeros(n, dtype=np.bool_)
        queue = np.empty(n, dtype=np.int64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for i in range(t * step, min(len(rows), (t + 1) * step)):
            _ppr_one(
                rows[i],
                indptr,
                indices,
                eligible,
                alpha,
                eps,
                by_degree,
                est,
                resid,
                queued,
                queue,
                seen,
                touched,
                ids[i],
                scores[i],
            )


def _scratch_push(n: int):
    """This thread's (resid float64, queued bool, queue int64) rows, all clear."""
    return cached(
        "ppr", n, lambda size: (np.zeros(size), np.zeros(size, np.bool_), np.empty(size, np.int64))
    )


def ppr_topn(
    rows, indptr, indices, eligible, alpha: float, eps: float, n: int, by_degree: bool = False
):
    """Top-``n`` members by approximate personalized PageRank from each member row (``p + α r``
    of the push, divided by the candidate's degree with ``by_degree``), without the member, their
    connections or opted-out members. Returns ``(ids int32, scores float32)`` of shape (R, n),
    -1 / -inf padded."""
    ids, scores = outputs(len(rows), n)
    if len(rows) and n:
        args = (indptr, indices, eligible, float(alpha), float(eps), bool(by_degree))
        run(
            _ppr_serial,
            _ppr_parallel,
            rows,
            args,
            len(eligible),
            ids,
            scores,
            extra_scratch=_scratch_push,
        )
    return ids, scores.astype(np.float32)


# ------------------------------------------------------------------ scores of given pairs
@njit(cache=True, nogil=True)
def _pairs_one(
    g,
    starts,
    us,
    vs,
    indptr,
    indices,
    alpha,
    eps,
    by_degree,
    est,
    resid,
    queued,
    queue,
    seen,
    touched,
    out,
):
    """Scores of the pairs ``starts[g]:starts[g + 1]`` (one member u, sorted by u): one push."""
    lo, hi = starts[g], starts[g + 1]
    u = us[lo]
    nt = _push(u, indptr, indices, alpha, eps, est, resid, queued, queue, seen, touched)
    _normalise(indptr, touched, nt, est, by_degree)
    for j in range(lo, hi):
        out[j] = est[vs[j]]  # zero where the push did not reach
    for t in range(nt):
        w = touched[t]
        est[w] = 0.0
        seen[w] = False


@njit(cache=True, nogil=True)
def _pairs_serial(
    starts,
    us,
    vs,
    indptr,
    indices,
    alpha,
    eps,
    by_degree,
    est,
    resid,
    queued,
    queue,
    seen,
    touched,
    out,
):
    for g in range(len(starts) - 1):
        _pairs_one(
            g,
            starts,
            us,
            vs,
            indptr,
            indices,
            alpha,
            eps,
            by_degree,
            est,
            resid,
            queued,
            queue,
            seen,
            touched,
            out,
        )


@njit(cache=True, parallel=True)
def _pairs_parallel(starts, us, vs, indptr, indices, alpha, eps, by_degree, n_chunks, out):
    n = len(indptr) - 1
    n_groups = len(starts) - 1
    step = (n_groups + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        est = np.zeros(n, dtype=np.float64)
        resid = np.zeros(n, dtype=np.float64)
        queued = np.zeros(n, dtype=np.bool_)
        queue = np.empty(n, dtype=np.int64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for g in range(t * step, min(n_groups, (t + 1) * step)):
            _pairs_one(
                g,
                starts,
                us,
                vs,
                indptr,
                indices,
                alpha,
                eps,
                by_degree,
                est,
                resid,
                queued,
                queue,
                seen,
                touched,
                out,
            )


def ppr_pair_scores(
    u, v, indptr, indices, alpha: float, eps: float, by_degree: bool = False
) -> np.ndarray:
    """Approximate PPR from ``u[i]`` at ``v[i]`` for every pair (the estimate ``p + α r`` of
    :func:`ppr_topn`, 0 where the push does not reach), float64 of shape (P,). One push per
    distinct ``u``; no exclusions."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape, got {u.shape} and {v.shape}")
    flat_u, flat_v = u.ravel(), v.ravel()
    order = np.argsort(flat_u, kind="stable")
    us, vs = flat_u[order], flat_v[order]
    starts = np.flatnonzero(np.r_[True, us[1:] != us[:-1], True]) if len(us) else np.zeros(1, int)
    starts = starts.astype(np.int64)
    sorted_out = np.zeros(len(us))
    n = len(indptr) - 1
    if len(us):
        args = (starts, us, vs, indptr, indices, float(alpha), float(eps), bool(by_degree))
        if use_parallel(len(starts) - 1):
            with PARALLEL_LOCK:
                _pairs_parallel(*args, numba.get_num_threads(), sorted_out)
        else:
            est, seen, touched = scratch(n)
            _pairs_serial(*args, est, *_scratch_push(n), seen, touched, sorted_out)
    out = np.empty(len(us))
    out[order] = sorted_out
    return out.reshape(u.shape)
