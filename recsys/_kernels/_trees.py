"""Pools scored by the gradient-boosted trees in one compiled pass.

The walk and the overlaps are :mod:`recsys._kernels._pairs`'; the feature row is
:func:`recsys._features.feature_row`'s, the trees' inputs :func:`recsys._trees.model_inputs`'
and the traversal :func:`recsys._trees.ensemble_margin`, so these scores are the same bits as
``GradientBoostedAcceptanceModel.reciprocal_score`` of the pairs' features. Only the model
differs from :func:`recsys._kernels.pool_scores`: the (pairs × features) matrix is never built.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from recsys._features import FEATURE_NAMES, embedding_dot, feature_row
from recsys._kernels._pairs import _clear, _graph, _overlap, _run, _walk
from recsys._reciprocal import RECIPROCAL_CODES, combine, sigmoid32
from recsys._trees import N_DERIVED, ensemble_margin, model_inputs

__all__ = ["tree_pool_scores"]


@njit(cache=True, nogil=True)
def _score_one(u, vs, out_scores, out_outside, graph, items, member, trees, derived, how, scr):
    factors, communities, n_interests = member
    indptr = graph[0]
    nt = _walk(u, graph, items, scr)
    row = np.empty(len(FEATURE_NAMES), dtype=np.float64)
    x = np.empty(len(FEATURE_NAMES) + N_DERIVED, dtype=np.float64)
    du = float(indptr[u + 1] - indptr[u])
    for p in range(len(vs)):
        v = vs[p]
        if v < 0:
            continue
        aa_, ra_, cc, walks, shared_i, cosine, l3 = _overlap(v, graph, items, scr)
        dv = float(indptr[v + 1] - indptr[v])
        embed = embedding_dot(factors, u, v)
        same = 1.0 if communities[u] == communities[v] else 0.0
        both = 1.0 if n_interests[u] > 0 and n_interests[v] > 0 else 0.0
        feature_row(aa_, ra_, cc, walks, l3, shared_i, cosine, embed, du, dv, same, both, row)
        model_inputs(row, False, derived, x)
        d_uv = ensemble_margin(x, trees)
        model_inputs(row, True, derived, x)
        d_vu = ensemble_margin(x, trees)
        out_scores[p] = combine(sigmoid32(d_uv), sigmoid32(d_vu), how)
        out_outside[p] = cc == 0
    _clear(u, nt, items, scr)


@njit(cache=True, nogil=True)
def _score_range(
    r0, r1, rows, pool_ids, out_scores, out_outside, graph, items, member, trees, derived, how, scr
):
    for i in range(r0, r1):
        _score_one(
            rows[i],
            pool_ids[i],
            out_scores[i],
            out_outside[i],
            graph,
            items,
            member,
            trees,
            derived,
            how,
            scr,
        )


@njit(cache=True, parallel=True)
def _score_parallel(
    rows, pool_ids, out_scores, out_outside, graph, items, member, trees, derived, how, scratch
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
            member,
            trees,
            derived,
            how,
            mine,
        )


def tree_pool_scores(
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
    model,
    how: str,
):
    """:func:`recsys._kernels.pool_scores` for a
    :class:`recsys.GradientBoostedAcceptanceModel` ``model``: the reciprocal score of every
    pool member and whether the pair has no mutual contact, ``(scores float32 -inf at padding,
    outside bool)`` shaped as ``pool_ids``."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    pool_ids = np.ascontiguousarray(pool_ids)
    scores = np.full(pool_ids.shape, -np.inf, dtype=np.float32)
    outside = np.zeros(pool_ids.shape, dtype=bool)
    if not len(rows) or not pool_ids.shape[1]:
        return scores, outside
    rest = (
        _graph(adjacency, aa_w, ra_w, middle_ok),
        (tfidf.indptr, tfidf.indices, tfidf.data),
        (np.ascontiguousarray(factors, dtype=np.float32), communities, n_interests),
        model.trees_.arrays(),
        bool(model.derived_features),
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
