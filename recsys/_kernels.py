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
each chunk with its own scratch (batches). :func:`run` chooses between them.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange

__all__ = ["graph_topn", "interest_topn", "merge_rrf", "pair_overlaps", "keep_pairs"]

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
def _select(u, touched, nt, acc, seen, adj_indptr, adj_indices, eligible, exclude_own, out_ids, out_scores):
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
def _graph_one(u, indptr, indices, hop_w, middle_ok, eligible, eps, max_expand, acc, paths, seen, touched, out_ids, out_scores):
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
def _graph_serial(rows, indptr, indices, hop_w, middle_ok, eligible, eps, max_expand, acc, paths, seen, touched, out_ids, out_scores):
    for i in range(len(rows)):
        _graph_one(rows[i], indptr, indices, hop_w, middle_ok, eligible, eps, max_expand, acc, paths, seen, touched, out_ids[i], out_scores[i])


@njit(cache=True, parallel=True)
def _graph_parallel(rows, indptr, indices, hop_w, middle_ok, eligible, eps, max_expand, n_chunks, out_ids, out_scores):
    n = len(eligible)
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        acc = np.zeros(n, dtype=np.float64)
        paths = np.zeros(n, dtype=np.float64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for i in range(t * step, min(len(rows), (t + 1) * step)):
            _graph_one(rows[i], indptr, indices, hop_w, middle_ok, eligible, eps, max_expand, acc, paths, seen, touched, out_ids[i], out_scores[i])


def graph_topn(rows, indptr, indices, hop_w, middle_ok, eligible, eps: float, n: int, max_expand: int = 0):
    """Top-``n`` by ``Σ_{common w} hop_w[w] + eps · walks3`` for each member row (see
    :class:`recsys.AdamicAdarCandidates`), without the member, their connections or opted-out
    members; with ``max_expand > 0`` the walks of length three go on only from the
    ``max_expand`` most-walked two-hop members. Returns ``(ids int32, scores float32)`` of shape
    (R, n), -1 / -inf padded."""
    ids, scores = _outputs(len(rows), n)
    if len(rows) and n:
        args = (indptr, indices, hop_w, middle_ok, eligible, float(eps), int(max_expand))
        run(_graph_serial, _graph_parallel, rows, args, len(eligible), ids, scores, extra_scratch=lambda n: (_scratch_paths(n),))
    return ids, scores.astype(np.float32)


# ------------------------------------------------------------------ shared interests
@njit(cache=True, nogil=True)
def _interest_one(u, q_indptr, q_indices, q_data, im_indptr, im_indices, im_data, adj_indptr, adj_indices, eligible,
                  acc, seen, touched, out_ids, out_scores):
    nt = 0
    for a in range(q_indptr[u], q_indptr[u + 1]):
        i = q_indices[a]
        w = q_data[a]
        for b in range(im_indptr[i], im_indptr[i + 1]):
            v = im_indices[b]
            nt = _touch(v, seen, touched, nt)
            acc[v] += w * im_data[b]
    return _select(u, touched, nt, acc, seen, adj_indptr, adj_indices, eligible, True, out_ids, out_scores)


@njit(cache=True, nogil=True)
def _interest_serial(rows, q_indptr, q_indices, q_data, im_indptr, im_indices, im_data, adj_indptr, adj_indices, eligible,
                     acc, seen, touched, out_ids, out_scores):
    for i in range(len(rows)):
        _interest_one(rows[i], q_indptr, q_indices, q_data, im_indptr, im_indices, im_data, adj_indptr, adj_indices, eligible,
                      acc, seen, touched, out_ids[i], out_scores[i])


@njit(cache=True, parallel=True)
def _interest_parallel(rows, q_indptr, q_indices, q_data, im_indptr, im_indices, im_data, adj_indptr, adj_indices, eligible,
                       n_chunks, out_ids, out_scores):
    n = len(eligible)
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        acc = np.zeros(n, dtype=np.float64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        for i in range(t * step, min(len(rows), (t + 1) * step)):
            _interest_one(rows[i], q_indptr, q_indices, q_data, im_indptr, im_indices, im_data, adj_indptr, adj_indices,
                          eligible, acc, seen, touched, out_ids[i], out_scores[i])


def interest_topn(rows, member_interests, interest_members, adjacency, eligible, n: int):
    """Top-``n`` by ``X[u] · X[v]`` (``member_interests`` X, ``interest_members`` = Xᵀ, both CSR)
    for each member row, with the same exclusions as :func:`graph_topn`."""
    ids, scores = _outputs(len(rows), n)
    if len(rows) and n:
        q, im = member_interests, interest_members
        args = (q.indptr, q.indices, q.data, im.indptr, im.indices, im.data, adjacency.indptr, adjacency.indices, eligible)
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
    n_take = _select(0, touched, nt, acc, seen, _NO_INDPTR, _NO_INDICES, _NO_ELIGIBLE, False, out_ids, tmp_scores)
    for j in range(n_take):
        out_bits[j] = bits[out_ids[j]]
    for t in range(nt):
        bits[touched[t]] = 0
    return n_take


@njit(cache=True, nogil=True)
def _merge_serial(cands, weight, bit, acc, bits, seen, touched, out_ids, out_bits):
    for i in range(cands.shape[0]):
        _merge_one(cands[i], weight, bit, acc, bits, seen, touched, out_ids[i], out_bits[i])


def merge_rrf(cands: np.ndarray, weight: np.ndarray, bit: np.ndarray, n_members: int, pool_size: int):
    """Per row of ``cands`` (R, T) — the sources' lists side by side — the ``pool_size`` members
    with the largest ``Σ weight[j]`` over their columns ``j``, with the OR of ``bit[j]``."""
    ids = np.full((cands.shape[0], pool_size), -1, dtype=np.int32)
    bits_out = np.zeros((cands.shape[0], pool_size), dtype=np.uint8)
    if cands.shape[0] and pool_size:
        acc, seen, touched = _scratch(n_members)
        bits = _scratch_bits(n_members)
        # merging is cheap next to the sources: serial even for batches
        _merge_serial(cands, weight.astype(np.float64), bit.astype(np.uint8), acc, bits, seen, touched, ids, bits_out)
    return ids, bits_out


# ------------------------------------------------------------------ pair overlaps (features)
#: Columns of :func:`pair_overlaps`.
OVERLAP_COLUMNS = ("adamic_adar", "resource_allocation", "common_contacts", "walks3", "shared_interests", "interest_cosine", "walks3_l3")


@njit(cache=True, nogil=True)
def _overlap_one(u, vs, out, indptr, indices, aa_w, ra_w, middle_ok, t_indptr, t_indices, t_data,
                 acc_aa, acc_ra, acc_cc, paths, paths_w, seen, touched, iacc, iseen):
    nt = 0
    for a in range(indptr[u], indptr[u + 1]):
        x = indices[a]
        x_ok = middle_ok[x]
        x_w = 1.0 / np.sqrt(indptr[x + 1] - indptr[x])
        for b in range(indptr[x], indptr[x + 1]):
            y = indices[b]
            nt = _touch(y, seen, touched, nt)
            acc_aa[y] += aa_w[x]
            acc_ra[y] += ra_w[x]
            acc_cc[y] += 1.0
            if x_ok and middle_ok[y]:
                paths[y] += 1.0
                paths_w[y] += x_w
    for a in range(t_indptr[u], t_indptr[u + 1]):
        iacc[t_indices[a]] = t_data[a]
        iseen[t_indices[a]] = True
    for p in range(len(vs)):
        v = vs[p]
        if seen[v]:
            out[p, 0] = acc_aa[v]
            out[p, 1] = acc_ra[v]
            out[p, 2] = acc_cc[v]
        # walks u–x–y–v end at v's contacts y: Σ over them of the allowed two-step walks u–x–y
        walks = 0.0
        walks_w = 0.0
        for a in range(indptr[v], indptr[v + 1]):
            y = indices[a]
            if seen[y] and middle_ok[y]:
                walks += paths[y]
                walks_w += paths_w[y] / np.sqrt(indptr[y + 1] - indptr[y])
        out[p, 3] = walks
        out[p, 6] = walks_w
        shared = 0.0
        cosine = 0.0
        for a in range(t_indptr[v], t_indptr[v + 1]):
            i = t_indices[a]
            if iseen[i]:
                shared += 1.0
                cosine += iacc[i] * t_data[a]
        out[p, 4] = shared
        out[p, 5] = cosine
    for t in range(nt):
        v = touched[t]
        acc_aa[v] = 0.0
        acc_ra[v] = 0.0
        acc_cc[v] = 0.0
        paths[v] = 0.0
        paths_w[v] = 0.0
        seen[v] = False
    for a in range(t_indptr[u], t_indptr[u + 1]):
        iacc[t_indices[a]] = 0.0
        iseen[t_indices[a]] = False


@njit(cache=True, nogil=True)
def _overlap_range(g0, g1, groups, starts, vs, out, indptr, indices, aa_w, ra_w, middle_ok, t_indptr, t_indices, t_data,
                   acc_aa, acc_ra, acc_cc, paths, paths_w, seen, touched, iacc, iseen):
    for g in range(g0, g1):
        s, e = starts[g], starts[g + 1]
        _overlap_one(groups[g], vs[s:e], out[s:e], indptr, indices, aa_w, ra_w, middle_ok, t_indptr, t_indices, t_data,
                     acc_aa, acc_ra, acc_cc, paths, paths_w, seen, touched, iacc, iseen)


@njit(cache=True, parallel=True)
def _overlap_parallel(groups, starts, vs, out, indptr, indices, aa_w, ra_w, middle_ok, t_indptr, t_indices, t_data, n_items, n_chunks):
    n = len(aa_w)
    step = (len(groups) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        acc_aa = np.zeros(n, dtype=np.float64)
        acc_ra = np.zeros(n, dtype=np.float64)
        acc_cc = np.zeros(n, dtype=np.float64)
        paths = np.zeros(n, dtype=np.float64)
        paths_w = np.zeros(n, dtype=np.float64)
        seen = np.zeros(n, dtype=np.bool_)
        touched = np.empty(n, dtype=np.int64)
        iacc = np.zeros(n_items, dtype=np.float64)
        iseen = np.zeros(n_items, dtype=np.bool_)
        _overlap_range(t * step, min(len(groups), (t + 1) * step), groups, starts, vs, out, indptr, indices, aa_w, ra_w,
                       middle_ok, t_indptr, t_indices, t_data, acc_aa, acc_ra, acc_cc, paths, paths_w, seen, touched, iacc, iseen)


def pair_overlaps(u, v, adjacency, aa_w, ra_w, middle_ok, tfidf):
    """For pairs ``(u[i], v[i])``: Adamic-Adar, resource allocation, common contacts, walks of
    length three through middles with ``middle_ok``, shared interests, the cosine of the
    (L2-normalised) ``tfidf`` rows, and the walks of length three weighted by
    ``1/√(deg x · deg y)`` of their middle members (Kovács et al.'s L3) — (P, 7) float64 in :data:`OVERLAP_COLUMNS` order.
    Each distinct ``u`` is traversed once, so pairs should come grouped by ``u`` (any order works)."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    order = np.argsort(u, kind="stable")
    us, vs = u[order], np.ascontiguousarray(v[order])
    groups, starts = np.unique(us, return_index=True)
    starts = np.append(starts, len(us)).astype(np.int64)
    out_sorted = np.zeros((len(u), len(OVERLAP_COLUMNS)), dtype=np.float64)
    n, n_items = adjacency.shape[0], tfidf.shape[1]
    args = (adjacency.indptr, adjacency.indices, aa_w, ra_w, middle_ok, tfidf.indptr, tfidf.indices, tfidf.data)
    if _parallel(len(groups)):
        with _PARALLEL_LOCK:
            _overlap_parallel(groups, starts, vs, out_sorted, *args, n_items, numba.get_num_threads())
    elif len(groups):
        acc, seen, touched = _scratch(n)
        extra = _scratch_overlap(n, n_items)
        _overlap_range(0, len(groups), groups, starts, vs, out_sorted, *args, acc, *extra[:4], seen, touched, *extra[4:])
    out = np.empty_like(out_sorted)
    out[order] = out_sorted
    return out


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
    return _keep_pairs(np.asarray(rows, np.int64), np.asarray(r, np.int64), np.asarray(c, np.int64),
                       adjacency.indptr, adjacency.indices, eligible)


# ------------------------------------------------------------------ drivers and scratch
def _outputs(n_rows: int, n: int):
    return np.full((n_rows, n), -1, dtype=np.int32), np.full((n_rows, n), -np.inf, dtype=np.float64)


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
    return _cached("base", n, lambda size: (np.zeros(size, np.float64), np.zeros(size, np.bool_), np.empty(size, np.int64)))


def _parallel(n_members: int) -> bool:
    return n_members > PARALLEL_MIN_MEMBERS and numba.get_num_threads() > 1


def _scratch_paths(n: int):
    return _cached("paths", n, lambda size: np.zeros(size))


def _scratch_bits(n: int):
    return _cached("bits", n, lambda size: np.zeros(size, np.uint8))


def _scratch_overlap(n: int, n_items: int):
    """Four more float64 rows of ``n`` and (float64, bool) rows of ``n_items``, all clear."""
    more = _cached("overlap", n, lambda size: (np.zeros(size), np.zeros(size), np.zeros(size), np.zeros(size)))
    items = _cached("items", n_items, lambda size: (np.zeros(size), np.zeros(size, np.bool_)))
    return (*more, *items)


def _cached(kind: str, n: int, make):
    """One scratch set per thread and kind, grown (never shrunk) to the largest size asked for:
    the kernels leave it clear, so any prefix of it is ready for the next call."""
    arrays = _LOCAL.__dict__.setdefault("arrays", {})
    got = arrays.get(kind)
    if got is None or _length(got) < n:
        got = arrays[kind] = make(max(n, 1))
    return got


def _length(got) -> int:
    return len(got[0]) if isinstance(got, tuple) else len(got)


# ------------------------------------------------------------------ prefix-bounded selection
@njit(cache=True, nogil=True)
def prefix_bounds_rows(candidate_ids, scores, groups, shares, k, tolerance, out_ids, out_scores, feasible):
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
