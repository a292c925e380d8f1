"""Candidate sources in compiled code: friends of friends, shared interests, reciprocal-rank
fusion of the sources' lists, and the exclusions of a list of pairs."""

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
    scratch_bits,
    scratch_paths,
    select,
    touch,
    use_parallel,
)

__all__ = ["graph_topn", "interest_topn", "keep_pairs", "merge_rrf"]


# ------------------------------------------------------------------ friends of friends
@njit(cache=True, nogil=True)
def _two_hops(u, indptr, indices, hop_w, middle_ok, acc, paths, seen, touched):
    """Accumulate ``acc[y] += hop_w[x]`` over the two-step walks u–x–y, and ``paths[y]`` = the
    number of them with both x and y allowed middle members; returns the count touched."""
    nt = 0
    for a in range(indptr[u], indptr[u + 1]):
        x = indices[a]
        w = hop_w[x]
        x_ok = middle_ok[x]
        for b in range(indptr[x], indptr[x + 1]):
            y = indices[b]
            nt = touch(y, seen, touched, nt)
            acc[y] += w
            if x_ok and middle_ok[y]:
                paths[y] += 1.0
    return nt


@njit(cache=True, nogil=True)
def _expand_cut(touched, n_two, paths, max_expand):
    """The path count from which two-hop members are expanded: the ``max_expand``-th largest
    (0: every one), and how many above it; ties at the cut fill the rest in traversal order."""
    cnt = 0
    for t in range(n_two):
        if paths[touched[t]] > 0.0:
            cnt += 1
    if max_expand <= 0 or cnt <= max_expand:
        return 0.0, 0
    vals = np.empty(cnt, dtype=np.float64)
    j = 0
    for t in range(n_two):
        p = paths[touched[t]]
        if p > 0.0:
            vals[j] = p
            j += 1
    cut = -np.partition(-vals, max_expand - 1)[max_expand - 1]
    above = 0
    for t in range(cnt):
        if vals[t] > cut:
            above += 1
    return cut, max_expand - above


@njit(cache=True, nogil=True)
def _graph_one(
    u,
    indptr,
    indices,
    hop_w,
    middle_ok,
    eligible,
    eps,
    max_expand,
    acc,
    paths,
    seen,
    touched,
    out_ids,
    out_scores,
):
    nt = _two_hops(u, indptr, indices, hop_w, middle_ok, acc, paths, seen, touched)
    n_two = nt
    cut, ties_left = _expand_cut(touched, n_two, paths, max_expand) if eps > 0.0 else (0.0, 0)
    for t in range(n_two):
        y = touched[t]
        p = paths[y]
        if p > 0.0:
            take = eps > 0.0 and (cut == 0.0 or p > cut or (p == cut and ties_left > 0))
            if take and p == cut:
                ties_left -= 1
            # walks u–x–y–v: each distinct y is expanded once, weighted by its walks from u, which
            # costs Σ_y deg(y) instead of one pass per walk (clustered networks reach y many ways)
            if take:
                for c in range(indptr[y], indptr[y + 1]):
                    v = indices[c]
                    nt = touch(v, seen, touched, nt)
                    acc[v] += eps * p
            paths[y] = 0.0
    return select(u, touched, nt, acc, seen, indptr, indices, eligible, True, out_ids, out_scores)


@njit(cache=True, nogil=True)
def _graph_serial(
    rows,
    indptr,
    indices,
    hop_w,
    middle_ok,
    eligible,
    eps,
    max_expand,
    acc,
    paths,
    seen,
    touched,
    out_ids,
    out_scores,
):
    for i in range(len(rows)):
        _graph_one(
            rows[i],
            indptr,
            indices,
            hop_w,
            middle_ok,
            eligible,
            eps,
            max_expand,
            acc,
            paths,
            seen,
            touched,
            out_ids[i],
            out_scores[i],
        )


@njit(cache=True, parallel=True)
def _graph_parallel(
    rows,
    indptr,
    indices,
    hop_w,
    middle_ok,
    eligible,
    eps,
    max_expand,
    n_chunks,
    out_ids,
    out_scores,
):
    n = len(eligible)
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        acc = np.zeros(n, dtype=np.float64)
        paths = np.zeros(n, dtype=np.float64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for i in range(t * step, min(len(rows), (t + 1) * step)):
            _graph_one(
                rows[i],
                indptr,
                indices,
                hop_w,
                middle_ok,
                eligible,
                eps,
                max_expand,
                acc,
                paths,
                seen,
                touched,
                out_ids[i],
                out_scores[i],
            )


def graph_topn(
    rows, indptr, indices, hop_w, middle_ok, eligible, eps: float, n: int, max_expand: int = 0
):
    """Top-``n`` by ``Σ_{common w} hop_w[w] + eps · walks3`` for each member row (see
    :class:`recsys.AdamicAdarCandidates`), without the member, their connections or opted-out
    members; with ``max_expand > 0`` the walks of length three go on only from the
    ``max_expand`` most-walked two-hop members. Returns ``(ids int32, scores float32)`` of shape
    (R, n), -1 / -inf padded."""
    ids, scores = outputs(len(rows), n)
    if len(rows) and n:
        args = (indptr, indices, hop_w, middle_ok, eligible, float(eps), int(max_expand))
        run(
            _graph_serial,
            _graph_parallel,
            rows,
            args,
            len(eligible),
            ids,
            scores,
            extra_scratch=lambda n: (scratch_paths(n),),
        )
    return ids, scores.astype(np.float32)


# ------------------------------------------------------------------ shared interests
@njit(cache=True, nogil=True)
def _interest_one(
    u,
    q_indptr,
    q_indices,
    q_data,
    im_indptr,
    im_indices,
    im_data,
    adj_indptr,
    adj_indices,
    eligible,
    acc,
    seen,
    touched,
    out_ids,
    out_scores,
):
    nt = 0
    for a in range(q_indptr[u], q_indptr[u + 1]):
        i = q_indices[a]
        w = q_data[a]
        for b in range(im_indptr[i], im_indptr[i + 1]):
            v = im_indices[b]
            nt = touch(v, seen, touched, nt)
            acc[v] += w * im_data[b]
    return select(
        u, touched, nt, acc, seen, adj_indptr, adj_indices, eligible, True, out_ids, out_scores
    )


@njit(cache=True, nogil=True)
def _interest_serial(
    rows,
    q_indptr,
    q_indices,
    q_data,
    im_indptr,
    im_indices,
    im_data,
    adj_indptr,
    adj_indices,
    eligible,
    acc,
    seen,
    touched,
    out_ids,
    out_scores,
):
    for i in range(len(rows)):
        _interest_one(
            rows[i],
            q_indptr,
            q_indices,
            q_data,
            im_indptr,
            im_indices,
            im_data,
            adj_indptr,
            adj_indices,
            eligible,
            acc,
            seen,
            touched,
            out_ids[i],
            out_scores[i],
        )


@njit(cache=True, parallel=True)
def _interest_parallel(
    rows,
    q_indptr,
    q_indices,
    q_data,
    im_indptr,
    im_indices,
    im_data,
    adj_indptr,
    adj_indices,
    eligible,
    n_chunks,
    out_ids,
    out_scores,
):
    n = len(eligible)
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        acc = np.zeros(n, dtype=np.float64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for i in range(t * step, min(len(rows), (t + 1) * step)):
            _interest_one(
                rows[i],
                q_indptr,
                q_indices,
                q_data,
                im_indptr,
                im_indices,
                im_data,
                adj_indptr,
                adj_indices,
                eligible,
                acc,
                seen,
                touched,
                out_ids[i],
                out_scores[i],
            )


def interest_topn(rows, member_interests, interest_members, adjacency, eligible, n: int):
    """Top-``n`` by ``X[u] · X[v]`` (``member_interests`` X, ``interest_members`` = Xᵀ, both CSR)
    for each member row, with the same exclusions as :func:`graph_topn`."""
    ids, scores = outputs(len(rows), n)
    if len(rows) and n:
        q, im = member_interests, interest_members
        args = (
            q.indptr,
            q.indices,
            q.data,
            im.indptr,
            im.indices,
            im.data,
            adjacency.indptr,
            adjacency.indices,
            eligible,
        )
        run(_interest_serial, _interest_parallel, rows, args, len(eligible), ids, scores)
    return ids, scores.astype(np.float32)


# ------------------------------------------------------------------ reciprocal-rank fusion
# merging applies no exclusions (the sources did): typed placeholders for _select's arguments
_NO_INDPTR = np.zeros(1, np.int32)
_NO_INDICES = np.zeros(0, np.int32)
_NO_ELIGIBLE = np.zeros(0, np.bool_)


@njit(cache=True, nogil=True)
def _merge_one(cand, weight, bit, acc, bits, seen, touched, out_ids, out_bits):
    nt = 0
    for j in range(len(cand)):
        v = cand[j]
        if v < 0:
            continue
        nt = touch(v, seen, touched, nt)
        acc[v] += weight[j]
        bits[v] |= bit[j]
    tmp_scores = np.empty(len(out_ids), dtype=np.float64)
    # no exclusions here (the sources made them): pass an empty adjacency row
    n_take = select(
        0,
        touched,
        nt,
        acc,
        seen,
        _NO_INDPTR,
        _NO_INDICES,
        _NO_ELIGIBLE,
        False,
        out_ids,
        tmp_scores,
    )
    for j in range(n_take):
        out_bits[j] = bits[out_ids[j]]
    for t in range(nt):
        bits[touched[t]] = 0
    return n_take


@njit(cache=True, nogil=True)
def _merge_serial(cands, weight, bit, acc, bits, seen, touched, out_ids, out_bits):
    for i in range(cands.shape[0]):
        _merge_one(cands[i], weight, bit, acc, bits, seen, touched, out_ids[i], out_bits[i])


@njit(cache=True, parallel=True)
def _merge_parallel(cands, weight, bit, acc, bits, seen, touched, out_ids, out_bits):
    n_chunks = acc.shape[0]
    step = (cands.shape[0] + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _merge_serial(
            cands[t * step : (t + 1) * step],
            weight,
            bit,
            acc[t],
            bits[t],
            seen[t],
            touched[t],
            out_ids[t * step : (t + 1) * step],
            out_bits[t * step : (t + 1) * step],
        )


def merge_rrf(
    cands: np.ndarray, weight: np.ndarray, bit: np.ndarray, n_members: int, pool_size: int
):
    """Per row of ``cands`` (R, T) — the sources' lists side by side — the ``pool_size`` members
    with the largest ``Σ weight[j]`` over their columns ``j``, with the OR of ``bit[j]``."""
    ids = np.full((cands.shape[0], pool_size), -1, dtype=np.int32)
    bits_out = np.zeros((cands.shape[0], pool_size), dtype=np.uint8)
    if cands.shape[0] and pool_size:
        args = (cands, weight.astype(np.float64), bit.astype(np.uint8))
        if use_parallel(cands.shape[0]):
            with PARALLEL_LOCK:
                n_chunks = numba.get_num_threads()
                per_chunk = cached(
                    f"merge{n_chunks}",
                    n_members,
                    lambda size: (
                        np.zeros((n_chunks, size)),
                        np.zeros((n_chunks, size), np.uint8),
                        np.zeros((n_chunks, size), np.bool_),
                        np.empty((n_chunks, size), np.int64),
                    ),
                )
                _merge_parallel(*args, *per_chunk, ids, bits_out)
        else:
            acc, seen, touched = scratch(n_members)
            _merge_serial(*args, acc, scratch_bits(n_members), seen, touched, ids, bits_out)
    return ids, bits_out


# ------------------------------------------------------------------ exclusions for a list of pairs
@njit(cache=True, nogil=True)
def _keep_pairs(rows, r, c, indptr, indices, eligible):
    keep = np.empty(len(r), dtype=np.bool_)
    for p in range(len(r)):
        u = rows[r[p]]
        v = c[p]
        ok = v != u and eligible[v]
        if ok:
            # connections are sorted within each CSR row: binary search
            lo, hi = indptr[u], indptr[u + 1]
            while lo < hi:
                mid = (lo + hi) // 2
                if indices[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < indptr[u + 1] and indices[lo] == v:
                ok = False
        keep[p] = ok
    return keep


def keep_pairs(rows, r, c, adjacency, eligible) -> np.ndarray:
    """Mask of pairs (``rows[r[i]]``, ``c[i]``) that may be proposed: not the member, not a
    connection, not opted out. ``adjacency`` must have sorted indices."""
    return _keep_pairs(
        np.asarray(rows, np.int64),
        np.asarray(r, np.int64),
        np.asarray(c, np.int64),
        adjacency.indptr,
        adjacency.indices,
        eligible,
    )
