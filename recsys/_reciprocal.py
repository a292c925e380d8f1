"""Both directions of a pair into one score: both members must want the meeting.

Every acceptance model scores a pair from each side and combines the two probabilities here, in
numpy (:func:`reciprocal`) or inside a compiled kernel (:func:`combine`, :func:`sigmoid32`), so
the logistic and the gradient-boosted models rank on the same scale.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numba import njit

__all__ = [
    "Combination",
    "RECIPROCAL_CODES",
    "ReciprocalScores",
    "combine",
    "reciprocal",
    "sigmoid",
    "sigmoid32",
]

Combination = Literal["harmonic", "product", "none"]

#: How the two directions combine, as the compiled scorers take it.
RECIPROCAL_CODES = {"harmonic": 0, "product": 1, "none": 2}


def reciprocal(p_uv: np.ndarray, p_vu: np.ndarray, *, how: Combination = "harmonic") -> np.ndarray:
    """Combine the two directions' acceptance probabilities; symmetric in its arguments
    (``none`` keeps the first direction only).

    The harmonic mean ``2pq/(p+q)`` is near the smaller of the two: a meeting only one side wants
    scores low (reciprocal recommendation, Pizzato et al. 2010).

    Examples
    --------
    >>> round(float(reciprocal(np.array([0.9]), np.array([0.1]))[0]), 2)
    0.18
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


def sigmoid(d: np.ndarray) -> np.ndarray:
    """σ(d) of float64 logits, as float32: the probability every scorer stores."""
    return (1.0 / (1.0 + np.exp(-d))).astype(np.float32)


@njit(cache=True, nogil=True)
def sigmoid32(d):
    """σ(d) rounded to float32, as every scorer stores a probability."""
    return np.float32(1.0 / (1.0 + np.exp(-d)))


@njit(cache=True, nogil=True)
def combine(p_uv, p_vu, how):
    """:func:`reciprocal` of two float32 probabilities, ``how`` a :data:`RECIPROCAL_CODES` code."""
    if how == 0:
        total = p_uv + p_vu
        return np.float32(2.0) * p_uv * p_vu / total if total > 0 else np.float32(0.0)
    if how == 1:
        return p_uv * p_vu
    return p_uv


class ReciprocalScores:
    """``predict_proba``, ``predict`` and ``reciprocal_score`` of an acceptance model from its
    log-odds: ``decision_function`` (seen from the first member) and ``_both_directions``
    (two (P,) arrays, seen from each side), which the model defines."""

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(P,) float32 probability of acceptance, seen from the first member."""
        return sigmoid(self.decision_function(features))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(P,) int64 hard labels: what fairlearn's reductions call."""
        return (self.decision_function(features) >= 0).astype(np.int64)

    def reciprocal_score(
        self, features: np.ndarray, *, how: Combination = "harmonic"
    ) -> np.ndarray:
        """Both directions scored and combined with :func:`reciprocal`; (P,) float32."""
        d_uv, d_vu = self._both_directions(features)
        return reciprocal(sigmoid(d_uv), sigmoid(d_vu), how=how)
