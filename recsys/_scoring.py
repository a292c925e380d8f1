"""Pair features over one graph, and the acceptance scores of candidate pools.

:class:`PairFeatures` holds what is known about the members of one (training) graph and turns
pairs into the feature columns of :data:`recsys.FEATURE_NAMES` (raw overlaps from the compiled
kernels, mapped by :func:`recsys._features.features_from_overlaps`). :meth:`PairFeatures.
score_pools` scores whole pools; for the plain logistic model and the gradient-boosted trees it
does so in one compiled pass that never builds the feature matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys import _kernels
from recsys._acceptance import AcceptanceModel
from recsys._candidates import hop_weights, middle_members
from recsys._features import FEATURE_NAMES, embedding_dots, features_from_overlaps
from recsys._reciprocal import RECIPROCAL_CODES, Combination
from recsys._trees import GradientBoostedAcceptanceModel

__all__ = ["PairFeatures", "pool_scores_from_features"]

_COMMON_CONTACTS = FEATURE_NAMES.index("log_common_contacts")


@dataclass(frozen=True)
class PairFeatures:
    """What is known about every pair of members in one (training) graph.

    Parameters
    ----------
    adjacency : csr_matrix (n, n) float32
    member_interests : csr_matrix (n, m), raw weights
    interest_weights : csr_matrix (n, m), TF-IDF rows, L2-normalised
    member_factors : ndarray (n, f) float32, L2-normalised (zeros where unknown)
    communities : ndarray (n,) int32
    """

    adjacency: sp.csr_matrix
    member_interests: sp.csr_matrix
    interest_weights: sp.csr_matrix
    member_factors: np.ndarray
    communities: np.ndarray

    def __post_init__(self) -> None:
        degrees = np.diff(self.adjacency.indptr)
        object.__setattr__(self, "degrees", degrees.astype(np.int32))
        aa = hop_weights(degrees).astype(np.float64)
        object.__setattr__(self, "_aa_weight", aa)
        ra = hop_weights(degrees, weighting="resource_allocation").astype(np.float64)
        object.__setattr__(self, "_ra_weight", ra)
        object.__setattr__(self, "_n_interests", np.diff(self.member_interests.indptr))

    def transform(self, u: np.ndarray, v: np.ndarray, *, chunk: int = 1_000_000) -> np.ndarray:
        """Features for pairs ``(u[i], v[i])`` seen from ``u``; shape (P, len(FEATURE_NAMES))
        float32.

        Pairs sharing a ``u`` are cheapest together: each distinct ``u``'s neighbourhood is
        walked once.
        """
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        out = np.empty((len(u), len(FEATURE_NAMES)), dtype=np.float32)
        for start in range(0, len(u), chunk):
            part = slice(start, start + chunk)
            out[part] = self._transform(u[part], v[part])
        return out

    def score_pools(
        self, rows: np.ndarray, pool_ids: np.ndarray, model, *, how: Combination = "harmonic"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every pool member's reciprocal acceptance score from ``model`` and whether the pair
        has no mutual contact: ``(scores (R, P) float32, -inf at padding; outside (R, P) bool)``.

        For the plain :class:`recsys.AcceptanceModel` and the
        :class:`recsys.GradientBoostedAcceptanceModel` the features and both directions' scores
        are computed in one compiled pass (:func:`recsys._kernels.pool_scores`,
        :func:`recsys._kernels.tree_pool_scores`); other models go through :meth:`transform`
        and their own ``reciprocal_score``. Both give the same scores.
        """
        if how not in RECIPROCAL_CODES:
            raise ValueError(f"unknown reciprocal combination {how!r}")
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(model, AcceptanceModel):
            kernel, scorer = _kernels.pool_scores, model.form()
        elif isinstance(model, GradientBoostedAcceptanceModel):
            kernel, scorer = _kernels.tree_pool_scores, model
        else:
            kernel = None
        if kernel is not None:
            return kernel(
                rows,
                pool_ids,
                self.adjacency,
                self._aa_weight,
                self._ra_weight,
                self._middle_ok(),
                self._tfidf_rows(),
                self.member_factors,
                self.communities,
                self._n_interests,
                scorer,
                how,
            )
        r, j = np.nonzero(pool_ids >= 0)
        features = self.transform(rows[r], pool_ids[r, j])
        return pool_scores_from_features(pool_ids, features, model, how=how)

    def _middle_ok(self) -> np.ndarray:
        # read when first needed, so the bound can be changed in tests
        if "_middle" not in self.__dict__:
            object.__setattr__(self, "_middle", middle_members(self.degrees))
        return self.__dict__["_middle"]

    def _tfidf_rows(self) -> sp.csr_matrix:
        if "_tfidf" not in self.__dict__:
            tfidf = self.interest_weights.tocsr()
            sorted_rows = tfidf if tfidf.has_sorted_indices else tfidf.sorted_indices()
            object.__setattr__(self, "_tfidf", sorted_rows)
        return self.__dict__["_tfidf"]

    def _transform(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        overlaps = _kernels.pair_overlaps(
            u,
            v,
            self.adjacency,
            self._aa_weight,
            self._ra_weight,
            self._middle_ok(),
            self._tfidf_rows(),
        )
        return features_from_overlaps(
            overlaps,
            embedding_similarity=embedding_dots(self.member_factors, u, v),
            degree_u=self.degrees[u],
            degree_v=self.degrees[v],
            same_community=self.communities[u] == self.communities[v],
            both_have_interests=(self._n_interests[u] > 0) & (self._n_interests[v] > 0),
        )


def pool_scores_from_features(
    pool_ids: np.ndarray, features: np.ndarray, model, *, how: Combination = "harmonic"
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`PairFeatures.score_pools` from already computed ``features`` of the pool's valid
    entries (row-major order of ``pool_ids >= 0``)."""
    scores = np.full(pool_ids.shape, -np.inf, dtype=np.float32)
    outside = np.zeros(pool_ids.shape, dtype=bool)
    r, j = np.nonzero(pool_ids >= 0)
    if len(r):
        scores[r, j] = model.reciprocal_score(features, how=how)
        # a pool never holds existing connections, so "no mutual contact" means beyond two hops
        outside[r, j] = features[:, _COMMON_CONTACTS] == 0
    return scores, outside
