"""Shared pieces of the compiled kernels: scratch rows, the top-n selection, and the drivers
that choose a serial or a parallel loop."""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit

#: Batches with more members than this run on all threads.
PARALLEL_MIN_MEMBERS = 32

# numba's default threading layer (workqueue) must not be entered by two Python threads at once;
# serving calls from several threads, so parallel launches take turns (serial calls never wait)
PARALLEL_LOCK = threading.Lock()
_LOCAL = threading.local()


@njit(cache=True, nogil=True)
def touch(v, seen, touched, nt):
    if not seen[v]:
        seen[v] = True
        touched[nt] = v
        nt += 1
    return nt


@njit(cache=True, nogil=True)
def select(
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


def outputs(n_rows: int, n: int):
    return np.full((n_rows, n), -1, dtype=np.int32), np.full(
        (n_rows, n), -np.inf, dtype=np.float64
    )


def run(serial, parallel, rows, args, n_members: int, ids, scores, *, extra_scratch=None) -> None:
    """Serial with this thread's scratch for a few members, else parallel over chunks (which
    allocate their own). ``extra_scratch(n)`` gives the serial kernel's rows after ``acc``."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if use_parallel(len(rows)):
        with PARALLEL_LOCK:
            parallel(rows, *args, numba.get_num_threads(), ids, scores)
    else:
        acc, seen, touched = scratch(n_members)
        extra = extra_scratch(n_members) if extra_scratch is not None else ()
        serial(rows, *args, acc, *extra, seen, touched, ids, scores)


def scratch(n: int):
    """This thread's (acc float64, seen bool, touched int64) rows of at least ``n``, all clear."""
    return cached(
        "base",
        n,
        lambda size: (
            np.zeros(size, np.float64),
            np.zeros(size, np.bool_),
            np.empty(size, np.int64),
        ),
    )


def use_parallel(n_members: int) -> bool:
    return n_members > PARALLEL_MIN_MEMBERS and numba.get_num_threads() > 1


def scratch_paths(n: int):
    return cached("paths", n, lambda size: np.zeros(size))


def scratch_bits(n: int):
    return cached("bits", n, lambda size: np.zeros(size, np.uint8))


def scratch_overlap(n: int, n_items: int, n_chunks: int):
    """``n_chunks`` clear overlap scratch sets, kept between calls (a million-member batch would
    otherwise allocate and fault in ~60 MB per chunk per call): ``acc`` (c, n, 5) float64,
    ``seen`` (c, n) bool, ``touched`` (c, n) int64, ``iacc`` (c, n_items) float64, ``iseen`` (c,
    n_items) bool."""
    members = cached(
        f"overlap{n_chunks}",
        n,
        lambda size: (
            np.zeros((n_chunks, size, 5)),
            np.zeros((n_chunks, size), np.bool_),
            np.empty((n_chunks, size), np.int64),
        ),
    )
    items = cached(
        f"overlap_items{n_chunks}",
        n_items,
        lambda size: (np.zeros((n_chunks, size)), np.zeros((n_chunks, size), np.bool_)),
    )
    return (*members, *items)


def cached(kind: str, n: int, make):
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
