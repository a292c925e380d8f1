"""Compiled per-member kernels behind the candidate sources and the pair features.

Why not scipy.sparse here: the sources are sparse products (``A[rows] · W · A``, the rows of
``A³``, ``X[rows] · Xᵀ``) and scipy computes them correctly, but for the few members of one
request its per-call overhead (index checks, format conversions, COO sorts) was 20 ms of a 25 ms
ranking at a million members, and a batch of 2,000 still cost ~10 ms a member. Numba compiles
the same arithmetic as loops over the CSR arrays with a dense scratch row per thread, touching
only the entries a member reaches; results are per member, so they do not depend on how a batch
is split across threads.

Every kernel has one per-member function (``_..._one``) and two drivers: a serial one that reuses
a thread-local scratch (one request: no allocation), and a parallel one over chunks of members,
each chunk with its own scratch (batches; the pair-overlap, scoring and merging kernels keep
theirs between calls). :func:`run` and :func:`_run_overlap` choose between them.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange

__all__ = [
    "graph_topn",
    "interest_topn",
    "merge_rrf",
    "pair_overlaps",
    "pool_scores",
    "keep_pairs",
    "fill_least_exposed",
]

#: Batches with more members than this run on all threads.
PARALLEL_MIN_MEMBERS = 32

# numba's default threading layer (workqueue) must not be entered by two Python threads at once;
# serving calls from several threads, so parallel launches take turns (serial calls never wait)
_PARALLEL_LOCK = threading.Lock()
_LOCAL = threading.local()


# ------------------------------------------------------------------ shared pieces
@njit(cache=True, nogil=True)
def _touch(v, seen, touched, nt):
    if not seen[v]:
        seen[v] = True
        touched[nt] = v
        nt += 1
    return nt


@njit(cache=True, nogil=True)
def _select(
    u, touched, nt, acc, seen, adj_indptr, adj_indices, eligible, exclude_own, out_ids, out_scores
):
    """Top entries of ``acc`` over the touched members, best first, ties to the smaller member
    row; drops non-positive scores and, with ``exclude_own``, the member, their connections and
    opted-out members. Resets the scratch it used."""
    if exclude_own:
        if seen[u]:
            acc[u] = 0.0
        for a in range(adj_indptr[u], adj_indptr[u + 1]):
            c = adj_indices[a]
            if seen[c]:
                acc[c] = 0.0
    m = 0
    for t in range(nt):
        v = touched[t]
        if acc[v] > 0.0 and (not exclude_own or eligible[v]):
            touched[m] = v  # compact in place: the kept ones are a prefix
            m += 1
        else:
            acc[v] = 0.0
            seen[v] = False
    n_out = out_ids.shape[0]
    keep = touched[:m].copy()
    vals = np.empty(m, dtype=np.float64)
    for t in range(m):
        vals[t] = acc[keep[t]]
    if m > n_out:
        # the n_out-th largest score; everything strictly above it is in, ties resolved below
        threshold = -np.partition(-vals, n_out - 1)[n_out - 1]
        sel = np.flatnonzero(vals >= threshold)
        keep_sel = keep[sel]
        vals_sel = vals[sel]
    else:
        keep_sel = keep
        vals_sel = vals
    by_id = np.argsort(keep_sel)
    keep_sel = keep_sel[by_id]
    vals_sel = vals_sel[by_id]
    order = np.argsort(-vals_sel, kind="mergesort")  # stable: equal scores stay by member row
    n_take = min(n_out, len(order))
    for j in range(n_take):
        out_ids[j] = keep_sel[order[j]]
        out_scores[j] = vals_sel[order[j]]
    for t in range(m):
        v = keep[t]
        acc[v] = 0.0
        seen[v] = False
    return n_take


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
            nt = _touch(y, seen, touched, nt)
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
                    nt = _touch(v, seen, touched, nt)
                    acc[v] += eps * p
            paths[y] = 0.0
    return _select(u, touched, nt, acc, seen, indptr, indices, eligible, True, out_ids, out_scores)


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
    ids, scores = _outputs(len(rows), n)
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
            extra_scratch=lambda n: (_scratch_paths(n),),
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
            nt = _touch(v, seen, touched, nt)
            acc[v] += w * im_data[b]
    return _select(
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
    ids, scores = _outputs(len(rows), n)
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
        nt = _touch(v, seen, touched, nt)
        acc[v] += weight[j]
        bits[v] |= bit[j]
    tmp_scores = np.empty(len(out_ids), dtype=np.float64)
    # no exclusions here (the sources made them): pass an empty adjacency row
    n_take = _select(
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
        if _parallel(cands.shape[0]):
            with _PARALLEL_LOCK:
                n_chunks = numba.get_num_threads()
                scratch = _cached(
                    f"merge{n_chunks}",
                    n_members,
                    lambda size: (
                        np.zeros((n_chunks, size)),
                        np.zeros((n_chunks, size), np.uint8),
                        np.zeros((n_chunks, size), np.bool_),
                        np.empty((n_chunks, size), np.int64),
                    ),
                )
                _merge_parallel(*args, *scratch, ids, bits_out)
        else:
            acc, seen, touched = _scratch(n_members)
            _merge_serial(*args, acc, _scratch_bits(n_members), seen, touched, ids, bits_out)
    return ids, bits_out


# ------------------------------------------------------------------ pair overlaps (features)
#: Columns of :func:`pair_overlaps`.
OVERLAP_COLUMNS = (
    "adamic_adar",
    "resource_allocation",
    "common_contacts",
    "walks3",
    "shared_interests",
    "interest_cosine",
    "walks3_l3",
)


# The walk's sums for one member y sit side by side in ``acc[y]`` (one cache line, not five
# scattered rows): Adamic-Adar, resource allocation, common contacts, allowed two-step walks,
# and those walks weighted by 1/√deg of their middle member.
_AA, _RA, _CC, _PATHS, _PATHS_W = range(5)


@njit(cache=True, nogil=True)
def _overlap_walk(
    u,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    """Walk ``u``'s two hops and spread its interests into the scratch; returns how many were
    touched.
    """
    nt = 0
    for a in range(indptr[u], indptr[u + 1]):
        x = indices[a]
        x_ok = middle_ok[x]
        x_w = 1.0 / np.sqrt(indptr[x + 1] - indptr[x])
        for b in range(indptr[x], indptr[x + 1]):
            y = indices[b]
            nt = _touch(y, seen, touched, nt)
            acc[y, _AA] += aa_w[x]
            acc[y, _RA] += ra_w[x]
            acc[y, _CC] += 1.0
            if x_ok and middle_ok[y]:
                acc[y, _PATHS] += 1.0
                acc[y, _PATHS_W] += x_w
    for a in range(t_indptr[u], t_indptr[u + 1]):
        iacc[t_indices[a]] = t_data[a]
        iseen[t_indices[a]] = True
    return nt


@njit(cache=True, nogil=True)
def _overlap_pair(v, indptr, indices, t_indptr, t_indices, t_data, acc, seen, iacc, iseen):
    """The :data:`OVERLAP_COLUMNS` of ``(u, v)`` once :func:`_overlap_walk` has walked ``u``."""
    aa = ra = cc = 0.0
    if seen[v]:
        aa, ra, cc = acc[v, _AA], acc[v, _RA], acc[v, _CC]
    # walks u–x–y–v end at v's contacts y: Σ over them of the allowed two-step walks u–x–y
    # (zero unless y is a middle member)
    walks = 0.0
    walks_w = 0.0
    for a in range(indptr[v], indptr[v + 1]):
        y = indices[a]
        if seen[y]:
            walked = acc[y, _PATHS]
            if walked != 0.0:
                walks += walked
                walks_w += acc[y, _PATHS_W] / np.sqrt(indptr[y + 1] - indptr[y])
    shared = 0.0
    cosine = 0.0
    for a in range(t_indptr[v], t_indptr[v + 1]):
        i = t_indices[a]
        if iseen[i]:
            shared += 1.0
            cosine += iacc[i] * t_data[a]
    return aa, ra, cc, walks, shared, cosine, walks_w


@njit(cache=True, nogil=True)
def _overlap_clear(u, nt, t_indptr, t_indices, acc, seen, touched, iacc, iseen):
    for t in range(nt):
        v = touched[t]
        acc[v, :] = 0.0
        seen[v] = False
    for a in range(t_indptr[u], t_indptr[u + 1]):
        iacc[t_indices[a]] = 0.0
        iseen[t_indices[a]] = False


@njit(cache=True, nogil=True)
def _overlap_one(
    u,
    vs,
    out,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    nt = _overlap_walk(
        u,
        indptr,
        indices,
        aa_w,
        ra_w,
        middle_ok,
        t_indptr,
        t_indices,
        t_data,
        acc,
        seen,
        touched,
        iacc,
        iseen,
    )
    for p in range(len(vs)):
        got = _overlap_pair(
            vs[p], indptr, indices, t_indptr, t_indices, t_data, acc, seen, iacc, iseen
        )
        for c in range(7):
            out[p, c] = got[c]
    _overlap_clear(u, nt, t_indptr, t_indices, acc, seen, touched, iacc, iseen)


@njit(cache=True, nogil=True)
def _overlap_range(
    g0,
    g1,
    groups,
    starts,
    vs,
    out,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    for g in range(g0, g1):
        s, e = starts[g], starts[g + 1]
        _overlap_one(
            groups[g],
            vs[s:e],
            out[s:e],
            indptr,
            indices,
            aa_w,
            ra_w,
            middle_ok,
            t_indptr,
            t_indices,
            t_data,
            acc,
            seen,
            touched,
            iacc,
            iseen,
        )


@njit(cache=True, parallel=True)
def _overlap_parallel(
    groups,
    starts,
    vs,
    out,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    n_chunks = acc.shape[0]
    step = (len(groups) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _overlap_range(
            t * step,
            min(len(groups), (t + 1) * step),
            groups,
            starts,
            vs,
            out,
            indptr,
            indices,
            aa_w,
            ra_w,
            middle_ok,
            t_indptr,
            t_indices,
            t_data,
            acc[t],
            seen[t],
            touched[t],
            iacc[t],
            iseen[t],
        )


def pair_overlaps(u, v, adjacency, aa_w, ra_w, middle_ok, tfidf):
    """For pairs ``(u[i], v[i])``: Adamic-Adar, resource allocation, common contacts, walks of
    length three through middles with ``middle_ok``, shared interests, the cosine of the
    (L2-normalised) ``tfidf`` rows, and the walks of length three weighted by
    ``1/√(deg x · deg y)`` of their middle members (Kovács et al.'s L3) — (P, 7) float64 in
    :data:`OVERLAP_COLUMNS` order.
    Each distinct ``u`` is traversed once, so pairs should come grouped by ``u`` (any order works).
    """
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    order = np.argsort(u, kind="stable")
    us, vs = u[order], np.ascontiguousarray(v[order])
    groups, starts = np.unique(us, return_index=True)
    starts = np.append(starts, len(us)).astype(np.int64)
    out_sorted = np.zeros((len(u), len(OVERLAP_COLUMNS)), dtype=np.float64)
    args = (
        adjacency.indptr,
        adjacency.indices,
        aa_w,
        ra_w,
        middle_ok,
        tfidf.indptr,
        tfidf.indices,
        tfidf.data,
    )
    if len(groups):
        _run_overlap(
            _overlap_range,
            _overlap_parallel,
            len(groups),
            adjacency.shape[0],
            tfidf.shape[1],
            (0, len(groups), groups, starts, vs, out_sorted, *args),
            (groups, starts, vs, out_sorted, *args),
        )
    out = np.empty_like(out_sorted)
    out[order] = out_sorted
    return out


def _run_overlap(
    serial, parallel, n_rows: int, n: int, n_items: int, serial_args: tuple, parallel_args: tuple
) -> None:
    """Serial on this thread's overlap scratch for a few members, else parallel on one scratch per
    chunk.
    """
    if _parallel(n_rows):
        with _PARALLEL_LOCK:
            parallel(*parallel_args, *_scratch_overlap(n, n_items, numba.get_num_threads()))
    else:
        serial(*serial_args, *(part[0] for part in _scratch_overlap(n, n_items, 1)))


# ------------------------------------------------------------------ pools scored in one pass
#: How :func:`pool_scores` combines the two directions (as :func:`recsys._scoring.reciprocal`).
RECIPROCAL_CODES = {"harmonic": 0, "product": 1, "none": 2}


@njit(cache=True, nogil=True)
def _f32(x):
    """A feature as ``PairFeatures.transform`` stores it: rounded to float32."""
    return np.float64(np.float32(x))


@njit(cache=True, nogil=True)
def _log1p(x):
    return 0.0 if x == 0.0 else np.log1p(x)  # most pool members share no contact: skip the call


@njit(cache=True, nogil=True)
def _probability(q_shared, lin_a, lin_b, x, y, q_aa, q_bb, q_ab, bias):
    """σ(z̃ᵀ W z̃ + b) with the own-size columns of ``z̃`` set to ``x`` and ``y``; ``q_shared``,
    ``lin_a``, ``lin_b`` are the parts that do not depend on them. float32, as
    :meth:`AcceptanceModel.predict_proba`."""
    d = (
        q_shared
        + 2.0 * (lin_a * x + lin_b * y)
        + q_aa * x * x
        + q_bb * y * y
        + 2.0 * q_ab * x * y
        + bias
    )
    return np.float32(1.0 / (1.0 + np.exp(-d)))


@njit(cache=True, nogil=True)
def _score_one(
    u,
    vs,
    out_scores,
    out_outside,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    factors,
    communities,
    n_interests,
    mean,
    scale,
    form,
    how,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    nt = _overlap_walk(
        u,
        indptr,
        indices,
        aa_w,
        ra_w,
        middle_ok,
        t_indptr,
        t_indices,
        t_data,
        acc,
        seen,
        touched,
        iacc,
        iseen,
    )
    w_shared, w_a, w_b, q_aa, q_bb, q_ab, bias = form
    n_shared = len(w_a)  # the symmetric features and the constant 1, last
    a, b = n_shared - 1, n_shared  # the two own-network-size features
    zs = np.empty(n_shared, dtype=np.float64)
    zs[n_shared - 1] = 1.0
    du = float(indptr[u + 1] - indptr[u])
    own_u = _f32(np.log1p(du))
    x_uv = (own_u - mean[a]) / scale[
        a
    ]  # u's size in its own column, and in the other's when seen from v
    y_vu = (own_u - mean[b]) / scale[b]
    for p in range(len(vs)):
        v = vs[p]
        if v < 0:
            continue
        aa, ra, cc, walks, shared, cosine, l3 = _overlap_pair(
            v, indptr, indices, t_indptr, t_indices, t_data, acc, seen, iacc, iseen
        )
        dv = float(indptr[v + 1] - indptr[v])
        union = du + dv - cc
        embed = np.float32(0.0)
        for c in range(factors.shape[1]):
            embed += factors[u, c] * factors[v, c]
        # FEATURE_NAMES order, standardised as AcceptanceModel.decision_function does
        zs[0] = _f32(_log1p(aa))
        zs[1] = _f32(_log1p(ra * 10))
        zs[2] = _f32(_log1p(cc))
        zs[3] = _f32(_log1p(walks))
        zs[4] = _f32(l3)
        zs[5] = _f32(cc / union if union > 0 else 0.0)
        zs[6] = _f32(_log1p(shared))
        zs[7] = _f32(cosine)
        zs[8] = np.float64(embed)
        zs[9] = 1.0 if communities[u] == communities[v] else 0.0
        zs[10] = 1.0 if n_interests[u] > 0 and n_interests[v] > 0 else 0.0
        for c in range(n_shared - 1):
            zs[c] = (zs[c] - mean[c]) / scale[c]
        q_shared = 0.0
        lin_a = 0.0
        lin_b = 0.0
        for i in range(n_shared):
            row = 0.0
            for j in range(n_shared):
                row += w_shared[i, j] * zs[j]
            q_shared += zs[i] * row
            lin_a += w_a[i] * zs[i]
            lin_b += w_b[i] * zs[i]
        own_v = _f32(_log1p(dv))
        p_uv = _probability(
            q_shared, lin_a, lin_b, x_uv, (own_v - mean[b]) / scale[b], q_aa, q_bb, q_ab, bias
        )
        # the other direction: the two own sizes swap, each standardised as the other's column
        p_vu = _probability(
            q_shared, lin_a, lin_b, (own_v - mean[a]) / scale[a], y_vu, q_aa, q_bb, q_ab, bias
        )
        if how == 0:
            total = p_uv + p_vu
            out_scores[p] = np.float32(2.0) * p_uv * p_vu / total if total > 0 else np.float32(0.0)
        elif how == 1:
            out_scores[p] = p_uv * p_vu
        else:
            out_scores[p] = p_uv
        out_outside[p] = cc == 0
    _overlap_clear(u, nt, t_indptr, t_indices, acc, seen, touched, iacc, iseen)


@njit(cache=True, nogil=True)
def _score_range(
    r0,
    r1,
    rows,
    pool_ids,
    out_scores,
    out_outside,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    factors,
    communities,
    n_interests,
    mean,
    scale,
    form,
    how,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    for i in range(r0, r1):
        _score_one(
            rows[i],
            pool_ids[i],
            out_scores[i],
            out_outside[i],
            indptr,
            indices,
            aa_w,
            ra_w,
            middle_ok,
            t_indptr,
            t_indices,
            t_data,
            factors,
            communities,
            n_interests,
            mean,
            scale,
            form,
            how,
            acc,
            seen,
            touched,
            iacc,
            iseen,
        )


@njit(cache=True, parallel=True)
def _score_parallel(
    rows,
    pool_ids,
    out_scores,
    out_outside,
    indptr,
    indices,
    aa_w,
    ra_w,
    middle_ok,
    t_indptr,
    t_indices,
    t_data,
    factors,
    communities,
    n_interests,
    mean,
    scale,
    form,
    how,
    acc,
    seen,
    touched,
    iacc,
    iseen,
):
    n_chunks = acc.shape[0]
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _score_range(
            t * step,
            min(len(rows), (t + 1) * step),
            rows,
            pool_ids,
            out_scores,
            out_outside,
            indptr,
            indices,
            aa_w,
            ra_w,
            middle_ok,
            t_indptr,
            t_indices,
            t_data,
            factors,
            communities,
            n_interests,
            mean,
            scale,
            form,
            how,
            acc[t],
            seen[t],
            touched[t],
            iacc[t],
            iseen[t],
        )


def pool_scores(
    rows,
    pool_ids,
    adjacency,
    aa_w,
    ra_w,
    middle_ok,
    tfidf,
    factors,
    communities,
    n_interests,
    mean,
    scale,
    quad,
    bias: float,
    how: str,
):
    """Pair features and the reciprocal acceptance score of every pool member in one pass.

    The same arithmetic as :func:`pair_overlaps`, ``PairFeatures.transform`` and the quadratic
    form of ``AcceptanceModel.decision_function`` in both directions, without materialising the
    (pairs × features) matrix: at a million members the numpy version spent more time building
    and multiplying that matrix than walking the graph. ``quad`` is the (F+1, F+1) symmetric form
    over ``[z, 1]``; the last two features are the two members' own network sizes.
    Returns ``(scores float32 -inf at padding, outside bool: no mutual contact)`` shaped as
    ``pool_ids``.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    pool_ids = np.ascontiguousarray(pool_ids)
    scores = np.full(pool_ids.shape, -np.inf, dtype=np.float32)
    outside = np.zeros(pool_ids.shape, dtype=bool)
    if not len(rows) or not pool_ids.shape[1]:
        return scores, outside
    n_feat = len(mean)
    if n_feat != 13:  # _score_one writes FEATURE_NAMES out by hand
        raise ValueError(f"the compiled scorer computes 13 pair features, the model has {n_feat}")
    shared = np.array([*range(n_feat - 2), n_feat])  # every column of [z, 1] but the two own sizes
    a, b = n_feat - 2, n_feat - 1
    quad = np.asarray(quad, dtype=np.float64)
    form = (
        np.ascontiguousarray(quad[np.ix_(shared, shared)]),
        quad[shared, a].copy(),
        quad[shared, b].copy(),
        float(quad[a, a]),
        float(quad[b, b]),
        float(quad[a, b]),
        float(bias),
    )
    args = (
        adjacency.indptr,
        adjacency.indices,
        aa_w,
        ra_w,
        middle_ok,
        tfidf.indptr,
        tfidf.indices,
        tfidf.data,
        np.ascontiguousarray(factors, dtype=np.float32),
        communities,
        n_interests,
        np.asarray(mean, np.float64),
        np.asarray(scale, np.float64),
        form,
        RECIPROCAL_CODES[how],
    )
    _run_overlap(
        _score_range,
        _score_parallel,
        len(rows),
        adjacency.shape[0],
        tfidf.shape[1],
        (0, len(rows), rows, pool_ids, scores, outside, *args),
        (rows, pool_ids, scores, outside, *args),
    )
    return scores, outside


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


# ------------------------------------------------------------------ drivers and scratch
def _outputs(n_rows: int, n: int):
    return np.full((n_rows, n), -1, dtype=np.int32), np.full(
        (n_rows, n), -np.inf, dtype=np.float64
    )


def run(serial, parallel, rows, args, n_members: int, ids, scores, *, extra_scratch=None) -> None:
    """Serial with this thread's scratch for a few members, else parallel over chunks (which
    allocate their own). ``extra_scratch(n)`` gives the serial kernel's rows after ``acc``."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if _parallel(len(rows)):
        with _PARALLEL_LOCK:
            parallel(rows, *args, numba.get_num_threads(), ids, scores)
    else:
        acc, seen, touched = _scratch(n_members)
        extra = extra_scratch(n_members) if extra_scratch is not None else ()
        serial(rows, *args, acc, *extra, seen, touched, ids, scores)


def _scratch(n: int):
    """This thread's (acc float64, seen bool, touched int64) rows of at least ``n``, all clear."""
    return _cached(
        "base",
        n,
        lambda size: (
            np.zeros(size, np.float64),
            np.zeros(size, np.bool_),
            np.empty(size, np.int64),
        ),
    )


def _parallel(n_members: int) -> bool:
    return n_members > PARALLEL_MIN_MEMBERS and numba.get_num_threads() > 1


def _scratch_paths(n: int):
    return _cached("paths", n, lambda size: np.zeros(size))


def _scratch_bits(n: int):
    return _cached("bits", n, lambda size: np.zeros(size, np.uint8))


def _scratch_overlap(n: int, n_items: int, n_chunks: int):
    """``n_chunks`` clear overlap scratch sets, kept between calls (a million-member batch would
    otherwise allocate and fault in ~60 MB per chunk per call): ``acc`` (c, n, 5) float64,
    ``seen`` (c, n) bool, ``touched`` (c, n) int64, ``iacc`` (c, n_items) float64, ``iseen`` (c,
    n_items) bool."""
    members = _cached(
        f"overlap{n_chunks}",
        n,
        lambda size: (
            np.zeros((n_chunks, size, 5)),
            np.zeros((n_chunks, size), np.bool_),
            np.empty((n_chunks, size), np.int64),
        ),
    )
    items = _cached(
        f"overlap_items{n_chunks}",
        n_items,
        lambda size: (np.zeros((n_chunks, size)), np.zeros((n_chunks, size), np.bool_)),
    )
    return (*members, *items)


def _cached(kind: str, n: int, make):
    """One scratch set per thread and kind, grown (never shrunk) to the largest size asked for:
    the kernels leave it clear, so any prefix of it is ready for the next call."""
    arrays = _LOCAL.__dict__.setdefault("arrays", {})
    got = arrays.get(kind)
    if got is None or _length(got) < n:
        got = arrays[kind] = make(max(n, 1))
    return got


def _length(got) -> int:
    """Members a scratch set holds: the length of its first array's member axis."""
    first = got[0] if isinstance(got, tuple) else got
    return first.shape[1] if first.ndim == 3 else first.shape[-1]


# ------------------------------------------------------------------ top k of every row
@njit(cache=True, nogil=True)
def _top_k_row(ids_row, scores_row, out_ids, out_scores):
    by_id = np.argsort(ids_row, kind="mergesort")
    keyed = np.empty(len(ids_row), dtype=np.float64)
    for j in range(len(ids_row)):
        c = ids_row[by_id[j]]
        s = scores_row[by_id[j]]
        keyed[j] = -s if c >= 0 and s > -np.inf else np.inf
    order = np.argsort(keyed, kind="mergesort")
    for j in range(min(len(out_ids), len(ids_row))):
        if keyed[order[j]] == np.inf:
            break
        out_ids[j] = ids_row[by_id[order[j]]]
        out_scores[j] = scores_row[by_id[order[j]]]


@njit(cache=True, nogil=True)
def _top_k_serial(candidate_ids, scores, out_ids, out_scores):
    for r in range(candidate_ids.shape[0]):
        _top_k_row(candidate_ids[r], scores[r], out_ids[r], out_scores[r])


@njit(cache=True, parallel=True)
def _top_k_parallel(candidate_ids, scores, out_ids, out_scores):
    for r in prange(candidate_ids.shape[0]):
        _top_k_row(candidate_ids[r], scores[r], out_ids[r], out_scores[r])


def top_k_rows(candidate_ids, scores, out_ids, out_scores) -> None:
    """Per row, the ``out_ids.shape[1]`` best candidates by score, ties to the smaller id, padding
    (-1, or a score of -inf) left out; ``out_*`` must come filled with -1 / -inf. Two stable sorts
    per row (by id, then by score): numpy's lexsort of a whole batch took a tenth of batch
    ranking's time at a million members."""
    if _parallel(candidate_ids.shape[0]):
        with _PARALLEL_LOCK:
            _top_k_parallel(candidate_ids, scores, out_ids, out_scores)
    else:
        _top_k_serial(candidate_ids, scores, out_ids, out_scores)


# ------------------------------------------------------------------ the least-exposed tail of a
# slate
@njit(cache=True, nogil=True)
def assign_rounds(prefs, pref_scores, remaining, k, pref_inside, max_inside, out_ids, out_scores):
    """The rounds of :func:`recsys._rerank.assign_with_capacity`: each row proposes to its next
    preference (passing over a candidate within two hops once it holds ``max_inside`` of them);
    a candidate with ``c`` places left accepts the ``c`` best-scored proposals of the round (ties:
    the lower row). ``remaining`` is decremented in place; ``out_ids``/``out_scores`` (R, k) are
    filled. Only candidates with more proposals than places are sorted, so a round costs about
    one pass over the rows."""
    n_rows, width = prefs.shape
    filled = np.zeros(n_rows, dtype=np.int64)
    n_inside = np.zeros(n_rows, dtype=np.int64)
    ptr = np.zeros(n_rows, dtype=np.int64)
    prop_r = np.empty(n_rows, dtype=np.int64)
    prop_c = np.empty(n_rows, dtype=np.int64)
    prop_s = np.empty(n_rows, dtype=np.float32)
    count = np.zeros(len(remaining), dtype=np.int64)
    busy = np.empty(n_rows, dtype=np.int64)
    while True:
        m = 0
        active = False
        for r in range(n_rows):  # ascending rows: ties in a candidate's sort stay in row order
            if filled[r] >= k or ptr[r] >= width:
                continue
            j = ptr[r]
            c = prefs[r, j]
            if c < 0:
                continue
            active = True
            ptr[r] = j + 1
            if pref_inside[r, j] and n_inside[r] >= max_inside[r]:
                continue  # over its inside quota: passes over this candidate this round
            prop_r[m] = r
            prop_c[m] = c
            prop_s[m] = pref_scores[r, j]
            m += 1
        if not active:
            break
        for i in range(m):
            count[prop_c[i]] += 1
        nb = 0
        for i in range(m):
            c = prop_c[i]
            if count[c] <= remaining[c]:
                _accept(
                    prop_r[i],
                    c,
                    prop_s[i],
                    ptr,
                    pref_inside,
                    filled,
                    n_inside,
                    out_ids,
                    out_scores,
                )
            else:
                busy[nb] = i
                nb += 1
        if nb:
            idx = busy[:nb].copy()
            neg = np.empty(nb, dtype=np.float32)
            for q in range(nb):
                neg[q] = -prop_s[idx[q]]
            idx = idx[np.argsort(neg, kind="mergesort")]  # best first, rows in order within ties
            cand = np.empty(nb, dtype=np.int64)
            for q in range(nb):
                cand[q] = prop_c[idx[q]]
            idx = idx[np.argsort(cand, kind="mergesort")]  # grouped by candidate, order kept
            q = 0
            while q < nb:
                c = prop_c[idx[q]]
                end = q
                while end < nb and prop_c[idx[end]] == c:
                    end += 1
                take = min(max(remaining[c], 0), end - q)
                for t in range(q, q + take):
                    _accept(
                        prop_r[idx[t]],
                        c,
                        prop_s[idx[t]],
                        ptr,
                        pref_inside,
                        filled,
                        n_inside,
                        out_ids,
                        out_scores,
                    )
                remaining[c] -= take
                q = end
        for i in range(m):  # places taken by the candidates that accepted every proposal
            c = prop_c[i]
            if count[c] and count[c] <= remaining[c]:  # (the others are already down to <= 0)
                remaining[c] -= count[c]
            count[c] = 0


@njit(cache=True, nogil=True)
def _accept(r, c, s, ptr, pref_inside, filled, n_inside, out_ids, out_scores):
    out_ids[r, filled[r]] = c
    out_scores[r, filled[r]] = s
    filled[r] += 1
    if pref_inside[r, ptr[r] - 1]:
        n_inside[r] += 1


@njit(cache=True, nogil=True)
def fill_least_exposed(
    slates,
    slate_scores,
    prefs,
    pref_scores,
    pref_inside,
    n_inside,
    max_inside,
    exposure,
    capacity,
    depth,
):
    """Fill each slate's empty places (after its filled prefix) from its preference list, taking
    among the first ``depth`` entries the candidate with the least ``exposure`` so far (ties: the
    earlier preference), below ``capacity``, not already in the slate and, once a row holds
    ``max_inside`` candidates marked ``pref_inside``, beyond two hops; where none of those is
    left, the least exposed of the rest of the list. One place per row per round, so every row
    gets its first such place before any row its second. ``n_inside`` is set to the number of
    each prefix's candidates marked ``pref_inside``, then kept up to date with ``exposure``."""
    n_rows, k = slates.shape
    width = prefs.shape[1]
    filled = np.zeros(n_rows, dtype=np.int64)
    taken = np.zeros((n_rows, width), dtype=np.bool_)
    for r in range(
        n_rows
    ):  # (a per-member stamp array would cost serving a pass over all members)
        while filled[r] < k and slates[r, filled[r]] >= 0:
            filled[r] += 1
        n_inside[r] = 0
        for j in range(width):
            for q in range(filled[r]):
                if prefs[r, j] == slates[r, q]:
                    taken[r, j] = True
                    n_inside[r] += pref_inside[r, j]
                    break
    added = True
    while added:
        added = False
        for r in range(n_rows):
            if filled[r] >= k:
                continue
            best = _least_exposed(
                r,
                0,
                min(depth, width),
                prefs,
                taken,
                pref_inside,
                n_inside,
                max_inside,
                exposure,
                capacity,
            )
            if best < 0:
                best = _least_exposed(
                    r,
                    min(depth, width),
                    width,
                    prefs,
                    taken,
                    pref_inside,
                    n_inside,
                    max_inside,
                    exposure,
                    capacity,
                )
            if best < 0:
                continue
            c = prefs[r, best]
            slates[r, filled[r]] = c
            slate_scores[r, filled[r]] = pref_scores[r, best]
            filled[r] += 1
            taken[r, best] = True
            exposure[c] += 1
            if pref_inside[r, best]:
                n_inside[r] += 1
            added = True


@njit(cache=True, nogil=True)
def _least_exposed(
    r, start, stop, prefs, taken, pref_inside, n_inside, max_inside, exposure, capacity
):
    """Position in ``prefs[r, start:stop]`` of the eligible candidate shown least (-1: none)."""
    best = -1
    for j in range(start, stop):
        c = prefs[r, j]
        if c < 0:
            break
        if (
            taken[r, j]
            or exposure[c] >= capacity[c]
            or (pref_inside[r, j] and n_inside[r] >= max_inside[r])
        ):
            continue
        if best < 0 or exposure[c] < exposure[prefs[r, best]]:
            best = j
    return best


# ------------------------------------------------------------------ prefix-bounded selection
@njit(cache=True, nogil=True)
def prefix_bounds_rows(
    candidate_ids, scores, groups, shares, k, tolerance, out_ids, out_scores, feasible
):
    """The loop of :func:`recsys._rerank.prefix_bounds_select`, one row at a time (see there).

    ``shares`` is (R, G); outputs are filled in place. Within a group candidates go best score
    first, ties by pool position; among groups the first best-scored wins a tie."""
    n_rows, width = candidate_ids.shape
    n_groups = shares.shape[1]
    for r in range(n_rows):
        # candidates of each group, best first: a stable sort by descending score within the group
        counts_g = np.zeros(n_groups + 1, np.int64)
        for j in range(width):
            if candidate_ids[r, j] >= 0:
                counts_g[groups[r, j] + 1] += 1
        start = np.cumsum(counts_g)[:n_groups].copy()  # start[g] = candidates in groups < g
        end = start.copy()
        sorted_pos = np.empty(counts_g.sum(), np.int64)
        for j in range(width):
            if candidate_ids[r, j] >= 0:
                g = groups[r, j]
                sorted_pos[end[g]] = j
                end[g] += 1
        for g in range(n_groups):
            seg = sorted_pos[start[g] : end[g]]
            if len(seg) > 1:
                key = np.empty(len(seg), np.float64)
                for t in range(len(seg)):
                    key[t] = -scores[r, seg[t]]
                sorted_pos[start[g] : end[g]] = seg[np.argsort(key, kind="mergesort")]
        ptr = start.copy()
        taken = np.zeros(n_groups, np.int64)
        ok = True
        for i in range(1, k + 1):
            choice_min, best_min = -1, -np.inf
            choice_max, best_max = -1, -np.inf
            choice_any, best_any = -1, -np.inf
            short = False
            for g in range(n_groups):
                lower = np.floor((shares[r, g] - tolerance) * i + 1e-9)
                upper = np.ceil((shares[r, g] + tolerance) * i - 1e-9)
                if ptr[g] < end[g]:
                    s = scores[r, sorted_pos[ptr[g]]]
                    if taken[g] < lower and (choice_min < 0 or s > best_min):
                        choice_min, best_min = g, s
                    if taken[g] < upper and (choice_max < 0 or s > best_max):
                        choice_max, best_max = g, s
                    if choice_any < 0 or s > best_any:
                        choice_any, best_any = g, s
                elif taken[g] < lower:
                    short = True
            if choice_min >= 0:
                choice = choice_min
            elif choice_max >= 0:
                choice = choice_max
            else:
                choice = choice_any
                if choice >= 0:
                    ok = False  # candidates left, but every group is at its maximum
            if short:
                ok = False
            if choice < 0:
                continue  # the pool is used up
            j = sorted_pos[ptr[choice]]
            out_ids[r, i - 1] = candidate_ids[r, j]
            out_scores[r, i - 1] = scores[r, j]
            ptr[choice] += 1
            taken[choice] += 1
        feasible[r] = ok
