"""Group representation within ranked slates: skew at ``k`` and NDKL against target shares."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from recsys.metrics._checks import (
    _CHUNK_CELLS,
    _as_labels,
    _as_slates,
    _check_k,
    _target_codes,
    _valid_mask,
)


def _group_prefix_counts(
    slates: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """(R, K, G) one-hot group of each valid entry, and (R, K) validity."""
    valid = _valid_mask(slates)
    entry_codes = np.where(valid, codes[np.maximum(slates, 0)], -1)
    onehot = entry_codes[:, :, None] == np.arange(n_groups)[None, None, :]
    return onehot, valid


def skew_at_k(
    slate_ids: ArrayLike,
    groups: ArrayLike,
    target_shares: Mapping[str, float],
    *,
    k: int,
    eps: float = 1e-6,
) -> pd.DataFrame:
    r"""Skew of each group in the top ``k``, averaged over slates.

    For slate ``r`` with group shares :math:`p_{r,g}` among its top ``k`` (padding excluded) and
    target shares :math:`q_g`,

    .. math:: \mathrm{Skew}_g@k(r) = \ln \frac{p_{r,g} + \epsilon}{q_g + \epsilon}

    (Geyik, Ambler & Kenthapadi, "Fairness-Aware Ranking in Search & Recommendation Systems
    with Application to LinkedIn Talent Search", KDD 2019). The paper's ratio is unbounded when
    a share is 0; adding ``eps`` to both shares keeps it finite (this module's choice): a group
    absent from a slate with target 0.5 scores about ``ln(2e-6) = -13.1``. Negative: the group
    is under-represented; positive: over-represented. Empty slates are left out.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.
    groups : (n,) array of str
        Group of every member; every label needs a target share.
    target_shares : mapping of group to share
        Non-negative, summing to 1 (e.g. population shares).
    k : int
    eps : float
        Smoothing added to both shares.

    Returns
    -------
    pandas.DataFrame
        One row per group of ``target_shares`` (in its order): ``group``, ``target_share``,
        ``mean_share`` (mean of :math:`p_{r,g}`), ``skew`` (mean of the per-slate skew); NaN
        figures if every slate is empty.

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a", "a", "b", "b"])
    >>> table = skew_at_k(np.array([[0, 1], [0, 2]]), groups, {"a": 0.5, "b": 0.5}, k=2)
    >>> table.round(3)
      group  target_share  mean_share   skew
    0     a           0.5        0.75  0.347
    1     b           0.5        0.25 -6.561
    """
    k = _check_k(k)
    labels = _as_labels(groups)
    names, target, codes = _target_codes(labels, target_shares)
    slates = _as_slates(slate_ids, n_members=labels.shape[0])[:, :k]
    onehot, valid = _group_prefix_counts(slates, codes, len(names))
    length = valid.sum(axis=1)
    counted = length > 0
    share = onehot[counted].sum(axis=1) / length[counted, None]
    skew = np.log((share + eps) / (target[None, :] + eps))
    with np.errstate(invalid="ignore"):
        mean_share = share.mean(axis=0) if counted.any() else np.full(len(names), np.nan)
        mean_skew = skew.mean(axis=0) if counted.any() else np.full(len(names), np.nan)
    return pd.DataFrame(
        {"group": names, "target_share": target, "mean_share": mean_share, "skew": mean_skew}
    )


def ndkl(
    slate_ids: ArrayLike,
    groups: ArrayLike,
    target_shares: Mapping[str, float],
    *,
    k: int,
) -> np.ndarray:
    r"""Normalised discounted KL divergence of each slate from the target group shares.

    .. math:: \mathrm{NDKL}(\tau) = \frac{1}{Z} \sum_{i=1}^{|\tau|} \frac{1}{\log_2(i + 1)}
              \, d_{KL}(D_{\tau_i} \,\|\, D), \qquad Z = \sum_{i=1}^{|\tau|} \frac{1}{\log_2(i+1)}

    where :math:`D_{\tau_i}` is the group distribution of the top ``i`` and ``D`` the target
    (Geyik, Ambler & Kenthapadi, KDD 2019, eq. 4). :math:`|\tau| = \min(k, \text{slate
    length})`; padding and repeats are skipped, so positions count introductions. KL uses the
    natural log and :math:`0 \ln 0 = 0`; a group present in a prefix with target share 0 makes
    the divergence infinite. 0 for a slate matching the target at every prefix, positive
    otherwise.

    Parameters
    ----------
    slate_ids : (R, K) int array
        Slates, padded with -1.
    groups : (n,) array of str
        Group of every member; every label needs a target share.
    target_shares : mapping of group to share, summing to 1
    k : int

    Returns
    -------
    (R,) float64
        NDKL per slate; NaN for an empty slate.

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a", "a", "b", "b"])
    >>> ndkl(np.array([[0, 2], [0, 1]]), groups, {"a": 1.0, "b": 0.0}, k=2)
    array([inf,  0.])
    >>> ndkl(np.array([[0, 2]]), groups, {"a": 0.5, "b": 0.5}, k=2).round(4)
    array([0.425])
    """
    k = _check_k(k)
    labels = _as_labels(groups)
    names, target, codes = _target_codes(labels, target_shares)
    slates = _as_slates(slate_ids, n_members=labels.shape[0])[:, :k]
    n_slates, width = slates.shape
    n_groups = len(names)
    out = np.full(n_slates, np.nan)
    if width == 0:
        return out
    discount_by_rank = np.concatenate([[0.0], 1.0 / np.log2(np.arange(2, width + 2))])
    z_by_length = np.cumsum(discount_by_rank)
    with np.errstate(divide="ignore"):
        log_target = np.log(target)
    chunk = max(1, _CHUNK_CELLS // max(1, width * n_groups))
    for start in range(0, n_slates, chunk):
        onehot, valid = _group_prefix_counts(slates[start : start + chunk], codes, n_groups)
        rank = np.cumsum(valid, axis=1)  # (C, K): prefix length at each valid position
        prefix = np.cumsum(onehot, axis=1) / np.maximum(rank, 1)[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = prefix * (np.log(prefix) - log_target)
        kl = np.where(prefix > 0, terms, 0.0).sum(axis=2)  # (C, K), 0 ln 0 = 0
        weighted = np.where(valid, kl * discount_by_rank[rank], 0.0).sum(axis=1)
        length = rank[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(
                length > 0, weighted / z_by_length[length], np.nan
            )
    return out
