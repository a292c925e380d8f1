"""Inequality of outcomes such as introductions received per member.

The Gini coefficient, the Atkinson index with a bootstrap interval, and the Lorenz curve.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from recsys.metrics._checks import _CHUNK_CELLS, _as_values, _as_weights


def gini(values: ArrayLike, *, weights: ArrayLike | None = None) -> float:
    r"""Gini coefficient of non-negative outcomes (population form, no small-sample correction).

    With :math:`x_{(1)} \le \dots \le x_{(n)}` sorted ascending,

    .. math:: G = \frac{\sum_{i=1}^{n} (2i - n - 1)\, x_{(i)}}{n \sum_i x_i}
              = \frac{\sum_i \sum_j |x_i - x_j|}{2 n^2 \bar{x}}

    (Gini 1912; sorted form as in Damgaard & Weiner, "Describing inequality in plant size or
    fecundity", Ecology 81(4), 2000). This normalisation ranges from 0 (all equal) to
    :math:`(n - 1)/n` (one member holds everything); it is not rescaled by ``n/(n-1)``. All
    zeros count as equal: ``G = 0``.

    With frequency weights (:math:`w_i` members hold :math:`x_i`, e.g. the counts of a
    histogram) the sorted form runs over the values, not the members: with :math:`W = \sum_i w_i`
    members in all and :math:`s_i = \sum_{j < i} w_{(j)}` of them below :math:`x_{(i)}`, the
    :math:`w_{(i)}` members holding it fill ranks :math:`s_i + 1, \dots, s_i + w_{(i)}`, whose
    coefficients :math:`2r - W - 1` sum to :math:`w_{(i)} (2 s_i + w_{(i)} - W)`, so

    .. math:: G = \frac{\sum_i w_{(i)} (2 s_i + w_{(i)} - W)\, x_{(i)}}{W \sum_i w_i x_i}

    which for integer weights is the Gini of each :math:`x_i` repeated :math:`w_i` times,
    computed without expanding (a Spark job aggregates exposure to a histogram of a few
    hundred rows however many members there are). The formula is unchanged by scaling every
    weight, so non-integer weights read as shares of the population.

    Parameters
    ----------
    values : (n,) array of non-negative numbers, ``n >= 1``
    weights : (n,) array of non-negative numbers, or None
        Frequency weights: how many members hold each value. Zero weights leave their value
        out; all zero is an error. ``None`` (the default) is one member a value.

    Returns
    -------
    float in ``[0, (n - 1)/n]`` (with weights, ``n`` is the sum of the weights)

    Examples
    --------
    >>> gini([1, 1, 1, 1])
    0.0
    >>> gini([0, 0, 0, 8])
    0.75
    >>> gini([0, 8], weights=[3, 1])  # three members hold 0, one holds 8: as above
    0.75
    """
    x = _as_values(values)
    if weights is not None:
        return _weighted_gini(x, _as_weights(weights, n=x.shape[0]))
    x = np.sort(x)
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.shape[0]
    rank_weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1
    # Rescale before the weighted sum so very large outcomes do not overflow.
    g = float(rank_weights @ (x / x.max()) / (n * (total / x.max())))
    return min(max(g, 0.0), 1.0)


def _weighted_gini(x: np.ndarray, w: np.ndarray) -> float:
    """:func:`gini` of outcomes ``x`` (n,) held by ``w`` (n,) members each (checked inputs)."""
    keep = w > 0
    order = np.argsort(x[keep], kind="stable")
    x, w = x[keep][order], w[keep][order]
    top = x[-1]
    if top == 0:
        return 0.0
    y = x / top  # rescaled, as in the unweighted form, so large outcomes do not overflow
    n = w.sum()
    below = np.concatenate([[0.0], np.cumsum(w)[:-1]])
    g = float((w * (2.0 * below + w - n)) @ y / (n * (w @ y)))
    return min(max(g, 0.0), 1.0)


def _atkinson_rows(x: np.ndarray, epsilon: float) -> np.ndarray:
    """Atkinson index of each row of ``x`` (B, n), non-negative float64."""
    n = x.shape[1]
    out = np.zeros(x.shape[0], dtype=np.float64)
    scale = x.max(axis=1)
    pos = scale > 0  # all-zero rows are equal outcomes: index 0
    if epsilon == 0 or not pos.any():
        return out
    y = x[pos] / scale[pos, None]  # in [0, 1]: the index is scale-invariant
    log_mean = np.log(y.mean(axis=1))
    has_zero = (y == 0).any(axis=1)
    with np.errstate(divide="ignore"):
        log_y = np.log(y)
    if epsilon >= 1:
        # Geometric mean (eps = 1) or a negative power (eps > 1) of a zero outcome is 0, so the
        # equally distributed equivalent is 0 and the index is 1.
        safe = np.where(has_zero[:, None], 0.0, log_y)
        if epsilon == 1:
            log_ede = safe.mean(axis=1)
        else:
            log_ede = (logsumexp((1 - epsilon) * safe, axis=1) - np.log(n)) / (1 - epsilon)
        index = np.where(has_zero, 1.0, 1.0 - np.exp(log_ede - log_mean))
    else:
        # log-sum-exp of (1 - eps) log y: stable power mean; log 0 = -inf contributes 0.
        log_ede = (logsumexp((1 - epsilon) * log_y, axis=1) - np.log(n)) / (1 - epsilon)
        index = 1.0 - np.exp(log_ede - log_mean)
    out[pos] = np.clip(index, 0.0, 1.0)
    return out


def _check_epsilon(epsilon: float) -> float:
    epsilon = float(epsilon)
    if not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon}")
    return epsilon


def atkinson(
    values: ArrayLike, *, epsilon: float = 0.5, weights: ArrayLike | None = None
) -> float:
    r"""Atkinson inequality index of non-negative outcomes.

    .. math:: A_\varepsilon = 1 - \frac{1}{\bar{x}}
              \Big(\frac{1}{n}\sum_i x_i^{1-\varepsilon}\Big)^{1/(1-\varepsilon)}
              \quad (\varepsilon \ne 1), \qquad
              A_1 = 1 - \frac{(\prod_i x_i)^{1/n}}{\bar{x}}

    (Atkinson, "On the measurement of inequality", J. Econ. Theory 2(3), 1970; used for A/B
    tests of inequality at LinkedIn by Saint-Jacques et al., "Fairness through
    Experimentation", arXiv:2002.05819, 2020). ``epsilon`` is the aversion to inequality
    (0: none, index 0 always).

    Limits: equal outcomes give 0, and so do all zeros (equal, if empty-handed). One member of
    ``n`` holding everything, ``x = (T, 0, ..., 0)``, gives
    :math:`\big(\frac{1}{n}T^{1-\varepsilon}\big)^{1/(1-\varepsilon)} / (T/n)
    = n^{-\varepsilon/(1-\varepsilon)}`, so the maximum is
    :math:`1 - n^{-\varepsilon/(1-\varepsilon)}` for :math:`\varepsilon < 1`; for
    :math:`\varepsilon \ge 1` any zero outcome makes the index 1.

    With frequency weights (:math:`w_i` members hold :math:`x_i`) the means are weighted by the
    shares :math:`p_i = w_i / \sum_j w_j`: :math:`\bar{x} = \sum_i p_i x_i` and
    :math:`\big(\sum_i p_i x_i^{1-\varepsilon}\big)^{1/(1-\varepsilon)}` (geometric mean
    :math:`\prod_i x_i^{p_i}` at :math:`\varepsilon = 1`), which for integer weights is the
    index of each :math:`x_i` repeated :math:`w_i` times, computed without expanding.

    Parameters
    ----------
    values : (n,) array of non-negative numbers, ``n >= 1``
    epsilon : float, ``>= 0``
    weights : (n,) array of non-negative numbers, or None
        Frequency weights: how many members hold each value. Zero weights leave their value
        out; all zero is an error. ``None`` (the default) is one member a value.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> atkinson([2, 2, 2, 2])
    0.0
    >>> round(atkinson([0, 0, 0, 4], epsilon=0.5), 6)  # 1 - 4 ** -1
    0.75
    >>> atkinson([0, 1, 3], epsilon=1.0)
    1.0
    >>> round(atkinson([0, 4], epsilon=0.5, weights=[3, 1]), 6)  # as [0, 0, 0, 4]
    0.75
    >>> round(atkinson([1, 4], epsilon=2.0, weights=[2, 2]), 6)  # as [1, 1, 4, 4]: 1 - 1.6/2.5
    0.36
    """
    epsilon = _check_epsilon(epsilon)
    x = _as_values(values)
    if weights is not None:
        return _weighted_atkinson(x, _as_weights(weights, n=x.shape[0]), epsilon)
    return float(_atkinson_rows(x[None, :], epsilon)[0])


def _weighted_atkinson(x: np.ndarray, w: np.ndarray, epsilon: float) -> float:
    """:func:`atkinson` of outcomes ``x`` (n,) held by ``w`` (n,) members each (checked inputs).

    The arithmetic of :func:`_atkinson_rows` for one row, with the shares ``w / w.sum()`` in
    place of ``1 / n``.
    """
    keep = w > 0
    x, w = x[keep], w[keep]
    top = x.max()
    if epsilon == 0 or top == 0:  # all zeros are equal outcomes: index 0
        return 0.0
    y = x / top  # in [0, 1]: the index is scale-invariant
    share = w / w.sum()
    if epsilon >= 1 and (y == 0).any():
        return 1.0  # the equally distributed equivalent of a zero outcome is 0
    log_mean = np.log(share @ y)
    with np.errstate(divide="ignore"):
        log_y = np.log(y)
    if epsilon == 1:
        log_ede = share @ log_y
    else:
        # log-sum-exp of (1 - eps) log y with the shares as factors; log 0 = -inf contributes 0.
        log_ede = logsumexp((1 - epsilon) * log_y, b=share) / (1 - epsilon)
    return float(np.clip(1.0 - np.exp(log_ede - log_mean), 0.0, 1.0))


def atkinson_bootstrap(
    values: ArrayLike,
    *,
    epsilon: float = 0.5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> tuple[float, float, float]:
    r"""Atkinson index with a percentile bootstrap confidence interval.

    Resamples the ``n`` outcomes with replacement ``n_boot`` times, computes
    :func:`atkinson` of each resample, and returns the ``(1 - c)/2`` and ``(1 + c)/2``
    quantiles (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13), as in
    the inequality A/B tests of Saint-Jacques et al., "Fairness through Experimentation:
    Inequality in A/B testing as an approach to responsible design", arXiv:2002.05819, 2020.
    Resamples are drawn as ``(chunk, n)`` index matrices and evaluated row-wise in one
    vectorised pass per chunk (chunks hold about 4 million cells).

    Parameters
    ----------
    values : (n,) array of non-negative numbers
    epsilon : float
        Inequality aversion, see :func:`atkinson`.
    n_boot : int
        Number of resamples, ``>= 1``.
    confidence : float
        In (0, 1).
    random_state : int, numpy Generator or None
        Seed for reproducible intervals.

    Returns
    -------
    (estimate, low, high) : tuple of float
        ``estimate`` is the index of ``values`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).lognormal(size=500)
    >>> est, low, high = atkinson_bootstrap(x, n_boot=200, random_state=1)
    >>> bool(low <= est <= high)
    True
    """
    epsilon = _check_epsilon(epsilon)
    x = _as_values(values)
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(random_state)
    n = x.shape[0]
    estimate = float(_atkinson_rows(x[None, :], epsilon)[0])
    chunk = max(1, _CHUNK_CELLS // n)
    boot = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        boot[start : start + size] = _atkinson_rows(x[rng.integers(0, n, size=(size, n))], epsilon)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return estimate, float(low), float(high)


def lorenz_curve(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r"""Lorenz curve of non-negative outcomes.

    Point ``i`` (``0..n``) is :math:`(i/n,\ \sum_{j \le i} x_{(j)} / \sum_j x_j)` with
    outcomes sorted ascending (Lorenz, "Methods of measuring the concentration of wealth",
    JASA 9(70), 1905). The Gini coefficient is twice the area between it and the diagonal. All
    zeros give the diagonal (equal outcomes).

    Parameters
    ----------
    values : (n,) array of non-negative numbers, ``n >= 1``

    Returns
    -------
    population_share, outcome_share : (n + 1,) float64 each, from 0 to 1.

    Examples
    --------
    >>> lorenz_curve([3, 1])
    (array([0. , 0.5, 1. ]), array([0.  , 0.25, 1.  ]))
    """
    x = np.sort(_as_values(values))
    n = x.shape[0]
    population = np.arange(n + 1, dtype=np.float64) / n
    total = x.sum()
    if total == 0:
        return population, population.copy()
    outcome = np.concatenate([[0.0], np.cumsum(x) / total])
    outcome[-1] = 1.0  # exact end point despite rounding in the cumulative sum
    return population, outcome
