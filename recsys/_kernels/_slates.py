"""Slates in compiled code: the top k of every row, the capacity rounds, the least-exposed
places and the prefix-bounded selection."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from recsys._kernels._common import PARALLEL_LOCK, use_parallel

__all__ = ["assign_rounds", "fill_least_exposed", "prefix_bounds_rows", "top_k_rows"]


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
    if use_parallel(candidate_ids.shape[0]):
        with PARALLEL_LOCK:
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
    tiebreak,
):
    """Fill each slate's empty places (after its filled prefix) from its preference list, taking
    among the first ``depth`` entries the candidate with the least ``exposure`` so far (ties:
    the lower ``tiebreak``, then the earlier preference), below ``capacity``, not already in the
    slate and, once a row holds ``max_inside`` candidates marked ``pref_inside``, beyond two
    hops; where none of those is left, the least exposed of the rest of the list. One place per
    row per round, so every row gets its first such place before any row its second.
    ``n_inside`` is set to the number of each prefix's candidates marked ``pref_inside``, then
    kept up to date with ``exposure``."""
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
                tiebreak,
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
                    tiebreak,
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
    r, start, stop, prefs, taken, pref_inside, n_inside, max_inside, exposure, capacity, tiebreak
):
    """Position in ``prefs[r, start:stop]`` of the eligible candidate shown least, ties to the
    lower ``tiebreak`` and then the earlier preference (-1: none)."""
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
        if best < 0:
            best = j
            continue
        b = prefs[r, best]
        if exposure[c] < exposure[b] or (exposure[c] == exposure[b] and tiebreak[c] < tiebreak[b]):
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
