"""The fitted check on the ranking path.

scikit-learn's ``check_is_fitted`` builds the estimator's tags and scans every attribute for a
trailing underscore (about 4 µs each time); ranking one member passes through about 17 checks
(the model, its sources, the acceptance model, the re-ranker), which was a tenth of the
single-member time. :func:`require_fitted` asks for one attribute that ``fit`` (or loading) sets
and raises the same :class:`~sklearn.exceptions.NotFittedError` with scikit-learn's message.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = ["require_fitted"]


def require_fitted(estimator, attribute: str) -> None:
    """Raise :class:`~sklearn.exceptions.NotFittedError` unless ``estimator.attribute`` is set.

    >>> from recsys import AdamicAdarCandidates
    >>> require_fitted(AdamicAdarCandidates(), "adjacency_")
    Traceback (most recent call last):
    ...
    sklearn.exceptions.NotFittedError: This AdamicAdarCandidates instance is not fitted yet. ...
    """
    if getattr(estimator, attribute, None) is None:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
