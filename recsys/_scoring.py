"""Pair features and the reciprocal acceptance model: would both members want this meeting?"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from recsys._candidates import hop_weights

__all__ = ["PairFeatures", "FEATURE_NAMES", "AcceptanceModel", "reciprocal"]

logger = logging.getLogger(__name__)

#: Pair features, symmetric ones first; the last two are the two members' own network sizes and
#: are swapped to score the other direction. No sensitive attribute is ever a feature.
FEATURE_NAMES = (
    "log_adamic_adar",
    "log_resource_allocation",
    "log_common_contacts",
    "jaccard",
    "log_shared_interests",
    "interest_cosine",
    "embedding_similarity",
    "same_community",
    "both_have_interests",
    "log_degree_self",
    "log_degree_other",
)
_N_SYMMETRIC = len(FEATURE_NAMES) - 2


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
        object.__setattr__(self, "_aa_weight", hop_weights(degrees))
        object.__setattr__(self, "_ra_weight", hop_weights(degrees, weighting="resource_allocation"))
        object.__setattr__(self, "_n_interests", np.diff(self.member_interests.indptr))

    def transform(self, u: np.ndarray, v: np.ndarray, *, chunk: int = 200_000) -> np.ndarray:
        """Features for pairs ``(u[i], v[i])`` seen from ``u``; shape (P, len(FEATURE_NAMES)) float32."""
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        out = np.empty((len(u), len(FEATURE_NAMES)), dtype=np.float32)
        for start in range(0, len(u), chunk):
            su, sv = u[start : start + chunk], v[start : start + chunk]
            out[start : start + chunk] = self._transform(su, sv)
        return out

    def _transform(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        # one elementwise product per matrix gives every overlap feature: its non-zeros are the
        # common contacts (resp. shared interests) of each pair, weighted as each feature needs
        common_m = self.adjacency[u].multiply(self.adjacency[v]).tocsr()
        common = np.diff(common_m.indptr).astype(np.float32)
        aa = _row_sums(common_m, self._aa_weight)
        ra = _row_sums(common_m, self._ra_weight)
        du = self.degrees[u].astype(np.float32)
        dv = self.degrees[v].astype(np.float32)
        union = du + dv - common
        jaccard = np.divide(common, union, out=np.zeros_like(common), where=union > 0)
        shared_m = self.interest_weights[u].multiply(self.interest_weights[v]).tocsr()
        shared = np.diff(shared_m.indptr).astype(np.float32)
        cosine = _row_sums(shared_m, None)
        embed = np.einsum("ij,ij->i", self.member_factors[u], self.member_factors[v])
        same = (self.communities[u] == self.communities[v]).astype(np.float32)
        both = ((self._n_interests[u] > 0) & (self._n_interests[v] > 0)).astype(np.float32)
        return np.column_stack(
            [np.log1p(aa), np.log1p(ra * 10), np.log1p(common), jaccard, np.log1p(shared), cosine, embed,
             same, both, np.log1p(du), np.log1p(dv)]
        ).astype(np.float32)

    def common_contacts(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Number of mutual contacts per pair, (P,) float32."""
        return _rowwise_dot(self.adjacency[np.asarray(u)], self.adjacency[np.asarray(v)])


def _rowwise_dot(a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    """``(a[i] · b[i])`` for every row i of two equally shaped sparse matrices."""
    return np.asarray(a.multiply(b).sum(axis=1)).ravel().astype(np.float32)


def _row_sums(matrix: sp.csr_matrix, column_weights: np.ndarray | None) -> np.ndarray:
    """Per row: Σ_j w[j] over the stored columns j (``column_weights`` given), else Σ of the stored values."""
    values = matrix.data if column_weights is None else column_weights[matrix.indices]
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return np.bincount(rows, weights=values, minlength=matrix.shape[0]).astype(np.float32)


def swap_direction(features: np.ndarray) -> np.ndarray:
    """The same pairs seen from the other member: swap the two own-network-size columns."""
    swapped = features.copy()
    swapped[:, _N_SYMMETRIC] = features[:, _N_SYMMETRIC + 1]
    swapped[:, _N_SYMMETRIC + 1] = features[:, _N_SYMMETRIC]
    return swapped


def reciprocal(p_uv: np.ndarray, p_vu: np.ndarray, *, how: Literal["harmonic", "product", "none"] = "harmonic") -> np.ndarray:
    """Combine the two directions' acceptance probabilities; symmetric in its arguments
    (``none`` keeps the first direction only).

    The harmonic mean ``2pq/(p+q)`` is near the smaller of the two: a meeting only one side wants
    scores low (reciprocal recommendation, Pizzato et al. 2010).
    """
    p_uv = np.asarray(p_uv, dtype=np.float32)
    p_vu = np.asarray(p_vu, dtype=np.float32)
    if how == "harmonic":
        total = p_uv + p_vu
        return np.divide(2 * p_uv * p_vu, total, out=np.zeros_like(total), where=total > 0)
    if how == "product":
        return p_uv * p_vu
    if how == "none":
        return p_uv
    raise ValueError(f"unknown reciprocal combination {how!r}")


class AcceptanceModel(BaseEstimator):
    """Probability that a proposed pair connects, from :data:`FEATURE_NAMES`.

    Standardised features into a logistic regression (scikit-learn). It is stored as plain arrays
    (means, scales, coefficients) so a saved model holds no pickles; :meth:`predict_proba` is the
    same arithmetic as scikit-learn's pipeline, written out so it runs from those arrays.
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 500):
        self.C = C
        self.max_iter = max_iter

    def fit(self, features: np.ndarray, labels: np.ndarray, *, sample_weight: np.ndarray | None = None) -> "AcceptanceModel":
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"features must have shape (P, {len(FEATURE_NAMES)}), got {features.shape}")
        if len(np.unique(labels)) < 2:
            raise ValueError("the acceptance model needs both accepted and not-accepted pairs to learn from")
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter))
        pipe.fit(features, labels, logisticregression__sample_weight=sample_weight)
        scaler, clf = pipe[0], pipe[1]
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        self.coef_ = clf.coef_.ravel().astype(np.float64)
        self.intercept_ = float(clf.intercept_[0])
        return self

    @classmethod
    def from_arrays(cls, *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float) -> "AcceptanceModel":
        model = cls()
        model.mean_ = np.asarray(mean, dtype=np.float64)
        model.scale_ = np.asarray(scale, dtype=np.float64)
        model.coef_ = np.asarray(coef, dtype=np.float64)
        model.intercept_ = float(intercept)
        return model

    def to_dict(self) -> dict:
        return {
            "kind": "logistic_regression",
            "features": list(FEATURE_NAMES),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
        }

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.mean_) / self.scale_
        return z @ self.coef_ + self.intercept_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(P,) float32 probability of acceptance."""
        return (1.0 / (1.0 + np.exp(-self.decision_function(features)))).astype(np.float32)

    def reciprocal_score(self, features: np.ndarray, *, how: Literal["harmonic", "product", "none"] = "harmonic") -> np.ndarray:
        """Both directions scored and combined with :func:`reciprocal`; (P,) float32."""
        return reciprocal(self.predict_proba(features), self.predict_proba(swap_direction(features)), how=how)

