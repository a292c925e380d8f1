"""The table of pair features: raw overlaps of two members → the acceptance model's columns.

Every path that scores a pair — the compiled pool scorer (:func:`recsys._kernels.pool_scores`),
:meth:`recsys.PairFeatures.transform` and the broker's block products — first finds the same
raw overlaps of the two members (common contacts, walks, shared interests, ...) in its own way,
then maps them to feature columns here, with :func:`feature_row`. Adding a feature is one edit:
a name in :data:`FEATURE_NAMES` and its line in :func:`feature_row`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "FEATURE_NAMES",
    "OVERLAP_COLUMNS",
    "embedding_dot",
    "embedding_dots",
    "feature_row",
    "features_from_overlaps",
]

#: Pair features, symmetric ones first; the last two are the two members' own network sizes and
#: are swapped to score the other direction. No sensitive attribute is ever a feature.
FEATURE_NAMES = (
    "log_adamic_adar",
    "log_resource_allocation",
    "log_common_contacts",
    "log_walks3",
    "walks3_l3",
    "jaccard",
    "log_shared_interests",
    "interest_cosine",
    "embedding_similarity",
    "same_community",
    "both_have_interests",
    "log_degree_self",
    "log_degree_other",
)

#: Number of features that read the same from both sides (all but the two own network sizes).
N_SYMMETRIC = len(FEATURE_NAMES) - 2

#: The raw overlaps of a pair (u, v), as the kernels find them: Adamic-Adar and resource
#: allocation sums over common contacts, the number of common contacts, walks of length three
#: (plain, and weighted by 1/√ of the middle members' degrees: Kovács et al.'s L3), shared
#: interests and the cosine of the two TF-IDF interest rows.
OVERLAP_COLUMNS = (
    "adamic_adar",
    "resource_allocation",
    "common_contacts",
    "walks3",
    "shared_interests",
    "interest_cosine",
    "walks3_l3",
)


@njit(cache=True, nogil=True)
def _f32(x):
    """A feature as stored: rounded to float32 (kept as float64 for the arithmetic after)."""
    return np.float64(np.float32(x))


@njit(cache=True, nogil=True)
def _log1p(x):
    return 0.0 if x == 0.0 else np.log1p(x)  # most pool members share no contact: skip the call


@njit(cache=True, nogil=True)
def feature_row(aa, ra, common, walks, l3, shared, cosine, embed, deg_u, deg_v, same, both, out):
    """Write the :data:`FEATURE_NAMES` of one pair seen from ``u`` into ``out`` (at least
    ``len(FEATURE_NAMES)`` long), each rounded to float32.

    ``aa, ra, common, walks, l3, shared, cosine`` are the pair's :data:`OVERLAP_COLUMNS`;
    ``embed`` the dot product of the two members' embeddings; ``deg_u``, ``deg_v`` their numbers
    of connections; ``same`` and ``both`` 1.0 when they share a community and when both have
    interests.
    """
    union = deg_u + deg_v - common
    out[0] = _f32(_log1p(aa))
    out[1] = _f32(_log1p(ra * 10))
    out[2] = _f32(_log1p(common))
    out[3] = _f32(_log1p(walks))
    out[4] = _f32(l3)
    out[5] = _f32(common / union if union > 0 else 0.0)
    out[6] = _f32(_log1p(shared))
    out[7] = _f32(cosine)
    out[8] = _f32(embed)
    out[9] = same
    out[10] = both
    out[11] = _f32(_log1p(deg_u))
    out[12] = _f32(_log1p(deg_v))


@njit(cache=True, nogil=True)
def embedding_dot(factors, u, v):
    """The ``embedding_similarity`` of members ``u`` and ``v``: the dot product of their rows of
    ``factors`` (float32), summed in float32 in column order. Every path sums it this one way,
    so a pair's features are the same bits whichever path found them (numpy's dot sums in
    another order, which moved a tree model's score across a split for 1 pair in 2,000)."""
    total = np.float32(0.0)
    for c in range(factors.shape[1]):
        total += factors[u, c] * factors[v, c]
    return total


@njit(cache=True, nogil=True)
def _embedding_dots(factors, u, v, out):
    for p in range(len(u)):
        out[p] = embedding_dot(factors, u[p], v[p])


def embedding_dots(factors: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """:func:`embedding_dot` of pairs ``(u[i], v[i])``: (P,) float32."""
    out = np.empty(len(u), dtype=np.float32)
    if len(u):
        _embedding_dots(
            np.ascontiguousarray(factors, dtype=np.float32),
            np.asarray(u, dtype=np.int64),
            np.asarray(v, dtype=np.int64),
            out,
        )
    return out


@njit(cache=True, nogil=True)
def _rows(overlaps, embed, deg_u, deg_v, same, both, out):
    for p in range(out.shape[0]):  # a dozen operations a pair: one thread keeps up
        o = overlaps[p]
        # (the values are float32 already: writing them into float32 ``out`` is exact)
        feature_row(
            o[0],
            o[1],
            o[2],
            o[3],
            o[6],
            o[4],
            o[5],
            embed[p],
            deg_u[p],
            deg_v[p],
            same[p],
            both[p],
            out[p],
        )


def features_from_overlaps(
    overlaps: np.ndarray,
    *,
    embedding_similarity: np.ndarray,
    degree_u: np.ndarray,
    degree_v: np.ndarray,
    same_community: np.ndarray,
    both_have_interests: np.ndarray,
) -> np.ndarray:
    """Pair features of many pairs from their raw overlaps: :func:`feature_row` for each.

    Parameters
    ----------
    overlaps : ndarray (P, len(OVERLAP_COLUMNS))
        Raw overlaps in :data:`OVERLAP_COLUMNS` order.
    embedding_similarity : ndarray (P,)
    degree_u, degree_v : ndarray (P,)
        Connections of each side.
    same_community, both_have_interests : ndarray (P,) bool

    Returns
    -------
    ndarray (P, len(FEATURE_NAMES)) float32

    Examples
    --------
    >>> one = np.array([[0.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0]])
    >>> f = features_from_overlaps(one, embedding_similarity=np.array([0.25]),
    ...     degree_u=np.array([3]), degree_v=np.array([1]), same_community=np.array([True]),
    ...     both_have_interests=np.array([True]))
    >>> round(float(f[0, FEATURE_NAMES.index("jaccard")]), 3)
    0.333
    """
    overlaps = np.ascontiguousarray(overlaps, dtype=np.float64)
    out = np.empty((len(overlaps), len(FEATURE_NAMES)), dtype=np.float32)
    if len(overlaps):
        _rows(
            overlaps,
            np.ascontiguousarray(embedding_similarity, dtype=np.float64),
            np.ascontiguousarray(degree_u, dtype=np.float64),
            np.ascontiguousarray(degree_v, dtype=np.float64),
            np.ascontiguousarray(same_community, dtype=np.float64),
            np.ascontiguousarray(both_have_interests, dtype=np.float64),
            out,
        )
    return out


def swap_direction(features: np.ndarray) -> np.ndarray:
    """The same pairs seen from the other member: swap the two own-network-size columns."""
    swapped = features.copy()
    swapped[:, N_SYMMETRIC] = features[:, N_SYMMETRIC + 1]
    swapped[:, N_SYMMETRIC + 1] = features[:, N_SYMMETRIC]
    return swapped
