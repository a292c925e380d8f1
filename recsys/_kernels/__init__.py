"""Compiled per-member kernels behind the candidate sources and the pair features.

Why not scipy.sparse here: the sources are sparse products (``A[rows] · W · A``, the rows of
``A³``, ``X[rows] · Xᵀ``) and scipy computes them correctly, but for the few members of one
request its per-call overhead (index checks, format conversions, COO sorts) was 20 ms of a 25 ms
ranking at a million members, and a batch of 2,000 still cost ~10 ms a member. Numba compiles
the same arithmetic as loops over the CSR arrays with a dense scratch row per thread, touching
only the entries a member reaches; results are per member, so they do not depend on how a batch
is split across threads.

The personalized PageRank source (:mod:`recsys._kernels._ppr`) is a local push (Andersen, Chung &
Lang 2006) over the same CSR arrays: its work per member is bounded by its residual threshold, not
by the size of the network.

Every kernel has one per-member function (``_..._one``) and two drivers: a serial one that reuses
a thread-local scratch (one request: no allocation), and a parallel one over chunks of members,
each chunk with its own scratch (batches; the pair-overlap, scoring and merging kernels keep
theirs between calls). :func:`run` and :func:`_run_overlap` choose between them.
"""

from recsys._kernels._pairs import pair_overlaps, pool_scores
from recsys._kernels._ppr import ppr_pair_scores, ppr_topn
from recsys._kernels._slates import (
    assign_rounds,
    fill_least_exposed,
    prefix_bounds_rows,
    top_k_rows,
)
from recsys._kernels._sources import graph_topn, interest_topn, keep_pairs, merge_rrf
from recsys._kernels._trees import tree_pool_scores

__all__ = [
    "assign_rounds",
    "fill_least_exposed",
    "graph_topn",
    "interest_topn",
    "keep_pairs",
    "merge_rrf",
    "pair_overlaps",
    "pool_scores",
    "ppr_pair_scores",
    "ppr_topn",
    "prefix_bounds_rows",
    "top_k_rows",
    "tree_pool_scores",
]
