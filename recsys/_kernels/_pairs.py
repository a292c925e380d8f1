"""Pair overlaps and pool scores in compiled code: a member's two hops are walked once, then
every pair of theirs is read off the scratch.

The kernels take the graph as one tuple ``(indptr, indices, aa_w, ra_w, middle_ok)`` (the CSR
adjacency, the Adamic-Adar and resource-allocation weight of each middle member, and who may be
the middle of a walk of length three), the interests as ``(indptr, indices, data)`` of the
L2-normalised TF-IDF rows, and one thread's scratch as ``(acc, seen, touched, iacc, iseen)``.
What the overlaps become is not decided here: :func:`recsys._features.feature_row` maps them to
feature columns and :func:`recsys._acceptance.directional_logits` scores them.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from recsys._acceptance import directional_logits
from recsys._acceptance import standardised_both as _standardised_both
from recsys._features import FEATURE_NAMES, OVERLAP_COLUMNS, embedding_dot, feature_row
from recsys._kernels._common import PARALLEL_LOCK, scratch_overlap, touch, use_parallel
from recsys._reciprocal import RECIPROCAL_CODES, combine, sigmoid32

__all__ = ["pair_overlaps", "pool_scores"]

# The walk's sums for one member y sit side by side in ``acc[y]`` (one cache line, not five
# scattered rows): Adamic-Adar, resource allocation, common contacts, allowed two-step walks,
# and those walks weighted by 1/√deg of their middle member.
_AA, _RA, _CC, _PATHS, _PATHS_W = range(5)


@njit(cache=True, nogil=True)
def _walk(u, graph, items, scratch):
    """Walk ``u``'s two hops and spread its interests into the scratch; returns how many
    members were touched."""
    indptr, indices, aa_w, ra_w, middle_ok = graph
    t_indptr, t_indices, t_data = items
    acc, seen, touched, iacc, iseen = scratch
    nt = 0
    for a in range(indptr[u], indptr[u + 1]):
        x = indices[a]
        x_ok = middle_ok[x]
        x_w = 1.0 / np.sqrt(indptr[x + 1] - indptr[x])
        for b in range(indptr[x], indptr[x + 1]):
            y = indices[b]
            nt = touch(y, seen, touched, nt)
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
def _overlap(v, graph, items, scratch):
    """The :data:`recsys._features.OVERLAP_COLUMNS` of ``(u, v)`` once :func:`_walk` has walked
    ``u``."""
    indptr, indices = graph[0], graph[1]
    t_indptr, t_indices, t_data = items
    acc, seen, _, iacc, iseen = scratch
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
def _clear(u, nt, items, scratch):
    t_indptr, t_indices = items[0], items[1]
    acc, seen, touched, iacc, iseen = scratch
    for t in range(nt):
        v = touched[t]
        acc[v, :] = 0.0
        seen[v] = False
    for a in range(t_indptr[u], t_indptr[u + 1]):
        iacc[t_indices[a]] = 0.0
        iseen[t_indices[a]] = False


# ------------------------------------------------------------------ overlaps of a list of pairs
@njit(cache=True, nogil=True)
def _overlaps_range(g0, g1, groups, starts, vs, out, graph, items, scratch):
    for g in range(g0, g1):
        u = groups[g]
        nt = _walk(u, graph, items, scratch)
        for p in range(starts[g], starts[g + 1]):
            got = _overlap(vs[p], graph, items, scratch)
            for c in range(7):
                out[p, c] = got[c]
        _clear(u, nt, items, scratch)


@njit(cache=True, parallel=True)
def _overlaps_parallel(groups, starts, vs, out, graph, items, scratch):
    acc, seen, touched, iacc, iseen = scratch
    n_chunks = acc.shape[0]
    step = (len(groups) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        mine = (acc[t], seen[t], touched[t], iacc[t], iseen[t])
        _overlaps_range(
            t * step, min(len(groups), (t + 1) * step), groups, starts, vs, out, graph, items, mine
        )


def pair_overlaps(u, v, adjacency, aa_w, ra_w, middle_ok, tfidf) -> np.ndarray:
    """For pairs ``(u[i], v[i])``: Adamic-Adar, resource allocation, common contacts, walks of
    length three through middles with ``middle_ok``, shared interests, the cosine of the
    (L2-normalised) ``tfidf`` rows, and the walks of length three weighted by
    ``1/√(deg x · deg y)`` of their middle members (Kovács et al.'s L3) — (P, 7) float64 in
    :data:`recsys._features.OVERLAP_COLUMNS` order. Each distinct ``u`` is traversed once, so
    pairs should come grouped by ``u`` (any order works)."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    order = np.argsort(u, kind="stable")
    us, vs = u[order], np.ascontiguousarray(v[order])
    groups, starts = np.unique(us, return_index=True)
    starts = np.append(starts, len(us)).astype(np.int64)
    out_sorted = np.zeros((len(u), len(OVERLAP_COLUMNS)), dtype=np.float64)
    graph = _graph(adjacency, aa_w, ra_w, middle_ok)
    items = (tfidf.indptr, tfidf.indices, tfidf.data)
    if len(groups):
        _run(
            len(groups),
            adjacency.shape[0],
            tfidf.shape[1],
            lambda one: _overlaps_range(
                0, len(groups), groups, starts, vs, out_sorted, graph, items, one
            ),
            lambda chunks: _overlaps_parallel(
                groups, starts, vs, out_sorted, graph, items, chunks
            ),
        )
    out = np.empty_like(out_sorted)
    out[order] = out_sorted
    return out


# ------------------------------------------------------------------ pools scored in one pass
@njit(cache=True, nogil=True)
def _score_one(
    u,
    vs,
    out_scores,
    out_outside,
    graph,
    items,
    factors,
    communities,
    n_interests,
    model,
    how,
    scratch,
):
    mean, scale, shared, a, b, aa, bb, ab, bias = model
    indptr = graph[0]
    nt = _walk(u, graph, items, scratch)
    row = np.empty(len(mean), dtype=np.float64)
    s = np.empty(len(a), dtype=np.float64)
    du = float(indptr[u + 1] - indptr[u])
    for p in range(len(vs)):
        v = vs[p]
        if v < 0:
            continue
        aa_, ra_, cc, walks, shared_i, cosine, l3 = _overlap(v, graph, items, scratch)
        dv = float(indptr[v + 1] - indptr[v])
        embed = embedding_dot(factors, u, v)
        same = 1.0 if communities[u] == communities[v] else 0.0
        both = 1.0 if n_interests[u] > 0 and n_interests[v] > 0 else 0.0
        feature_row(aa_, ra_, cc, walks, l3, shared_i, cosine, embed, du, dv, same, both, row)
        x_uv, y_uv, x_vu, y_vu = _standardised_both(row, mean, scale, s)
        d_uv, d_vu = directional_logits(s, x_uv, y_uv, x_vu, y_vu, shared, a, b, aa, bb, ab, bias)
        out_scores[p] = combine(sigmoid32(d_uv), sigmoid32(d_vu), how)
        out_outside[p] = cc == 0
    _clear(u, nt, items, scratch)


@njit(cache=True, nogil=True)
def _score_range(
    r0,
    r1,
    rows,
    pool_ids,
    out_scores,
    out_outside,
    graph,
    items,
    factors,
    communities,
    n_interests,
    model,
    how,
    scratch,
):
    for i in range(r0, r1):
        _score_one(
            rows[i],
            pool_ids[i],
            out_scores[i],
            out_outside[i],
            graph,
            items,
            factors,
            communities,
            n_interests,
            model,
            how,
            scratch,
        )


@njit(cache=True, parallel=True)
def _score_parallel(
    rows,
    pool_ids,
    out_scores,
    out_outside,
    graph,
    items,
    factors,
    communities,
    n_interests,
    model,
    how,
    scratch,
):
    acc, seen, touched, iacc, iseen = scratch
    n_chunks = acc.shape[0]
    step = (len(rows) + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        mine = (acc[t], seen[t], touched[t], iacc[t], iseen[t])
        _score_range(
            t * step,
            min(len(rows), (t + 1) * step),
            rows,
            pool_ids,
            out_scores,
            out_outside,
            graph,
            items,
            factors,
            communities,
            n_interests,
            model,
            how,
            mine,
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
    form,
    how: str,
):
    """Pair features and the reciprocal acceptance score of every pool member in one pass.

    The same overlaps as :func:`pair_overlaps`, mapped to features by
    :func:`recsys._features.feature_row` and scored in both directions by
    :func:`recsys._acceptance.directional_logits` (``form``, a
    :class:`recsys._acceptance.DirectionalForm`), without materialising the (pairs × features)
    matrix: at a million members the numpy version spent more time building and multiplying
    that matrix than walking the graph. Returns ``(scores float32 -inf at padding, outside bool:
    no mutual contact)`` shaped as ``pool_ids``.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    pool_ids = np.ascontiguousarray(pool_ids)
    scores = np.full(pool_ids.shape, -np.inf, dtype=np.float32)
    outside = np.zeros(pool_ids.shape, dtype=bool)
    if not len(rows) or not pool_ids.shape[1]:
        return scores, outside
    if len(form.mean) != len(FEATURE_NAMES):
        raise ValueError(
            f"the model scores {len(form.mean)} pair features, this build computes "
            f"{len(FEATURE_NAMES)}"
        )
    model = (
        form.mean,
        form.scale,
        form.shared,
        form.a,
        form.b,
        form.aa,
        form.bb,
        form.ab,
        form.bias,
    )
    graph = _graph(adjacency, aa_w, ra_w, middle_ok)
    items = (tfidf.indptr, tfidf.indices, tfidf.data)
    rest = (
        graph,
        items,
        np.ascontiguousarray(factors, dtype=np.float32),
        communities,
        n_interests,
        model,
        RECIPROCAL_CODES[how],
    )
    _run(
        len(rows),
        adjacency.shape[0],
        tfidf.shape[1],
        lambda one: _score_range(0, len(rows), rows, pool_ids, scores, outside, *rest, one),
        lambda chunks: _score_parallel(rows, pool_ids, scores, outside, *rest, chunks),
    )
    return scores, outside


# ------------------------------------------------------------------ drivers
def _graph(adjacency, aa_w, ra_w, middle_ok) -> tuple:
    return (adjacency.indptr, adjacency.indices, aa_w, ra_w, middle_ok)


def _run(n_rows: int, n: int, n_items: int, serial, in_parallel) -> None:
    """``serial(scratch)`` on this thread's overlap scratch for a few members, else
    ``in_parallel(scratch)`` on one scratch set per chunk (kept between calls)."""
    if use_parallel(n_rows):
        with PARALLEL_LOCK:
            in_parallel(scratch_overlap(n, n_items, numba.get_num_threads()))
    else:
        serial(tuple(part[0] for part in scratch_overlap(n, n_items, 1)))
