"""Group equity: exposure and recall per group, with small groups suppressed.

Exposure per group against its share of the population measures allocation of exposure; mean
recall per group measures quality of service. Per-group sums come from fairlearn's MetricFrame.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from numpy.typing import ArrayLike

from recsys.metrics._checks import _as_labels, _as_values

_LOGGER = logging.getLogger(__name__)


def _group_count(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    return int(len(y_true))


def _group_sum(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(y_true))


def _group_mean(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true))


def _by_group(values: np.ndarray, labels: np.ndarray, metrics: dict) -> pd.DataFrame:
    """Per-group aggregation with fairlearn's MetricFrame, indexed by group label."""
    frame = MetricFrame(
        metrics=metrics, y_true=values, y_pred=values, sensitive_features=labels
    ).by_group
    frame.index = frame.index.astype(str)
    frame.index.name = "group"
    return frame


def group_exposure_table(
    exposure: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20
) -> pd.DataFrame:
    r"""Exposure received per group against the group's share of the population.

    For group ``g`` with :math:`N_g` of the ``N`` members and exposure :math:`E_g` of the
    total ``E``:

    .. math:: \mathrm{ratio}_g = \frac{E_g / E}{N_g / N}

    (1.0: the group is recommended in proportion to its size; the "demographic parity of
    exposure" of Singh & Joachims, "Fairness of Exposure in Rankings", KDD 2018). The harm
    measured is allocation of exposure. Aggregated with ``fairlearn.metrics.MetricFrame``.

    Groups with fewer than ``min_group_size`` members are suppressed: their ``members``,
    shares and ratio are missing, only the label and ``suppressed=True`` remain. Shares stay
    relative to all members, so suppression changes no other row. (With a single suppressed
    group its size can still be inferred from the others' population shares; publish the
    ratio alone where that matters.)

    Parameters
    ----------
    exposure : (n,) array of non-negative numbers
        E.g. :func:`exposure_counts`.
    groups : (n,) array of str
        Group of every member; no missing labels.
    min_group_size : int
        Smallest group whose figures are reported.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by label, with columns ``group`` (str), ``members``
        (nullable Int64), ``population_share``, ``exposure_share``, ``ratio`` (float64; NaN if
        suppressed or if there is no exposure at all) and ``suppressed`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a"] * 3 + ["b"] * 2 + ["c"])
    >>> table = group_exposure_table(np.array([1, 1, 1, 3, 3, 9]), groups, min_group_size=2)
    >>> table[["group", "members", "ratio", "suppressed"]]
      group  members     ratio  suppressed
    0     a        3  0.333333       False
    1     b        2  1.000000       False
    2     c     <NA>       NaN        True
    """
    x = _as_values(exposure)
    labels = _as_labels(groups, n=x.shape[0])
    frame = _by_group(x, labels, {"members": _group_count, "exposure": _group_sum})
    return exposure_table_from_sums(
        frame.index.to_numpy(dtype=object).astype(str),
        frame["members"].to_numpy(dtype=np.int64),
        frame["exposure"].to_numpy(dtype=np.float64),
        n_members=x.shape[0],
        total=float(x.sum()),
        min_group_size=min_group_size,
    )


def exposure_table_from_sums(
    groups: np.ndarray,
    members: np.ndarray,
    exposure: np.ndarray,
    *,
    n_members: int,
    total: float,
    min_group_size: int,
) -> pd.DataFrame:
    """The table of :func:`group_exposure_table` from per-group sums already aggregated elsewhere.

    For figures summed where the members are (e.g. by a Spark aggregation): given the sums of a
    member-level ``exposure`` and ``groups``, the table equals
    ``group_exposure_table(exposure, groups, min_group_size=min_group_size)``, suppression
    included.

    Parameters
    ----------
    groups : (G,) array of str
        Group labels, sorted.
    members : (G,) int array
        Members in each group.
    exposure : (G,) float array
        Exposure summed over each group's members.
    n_members : int
        Number of members, the sum of ``members``.
    total : float
        Exposure summed over all members.
    min_group_size : int
        Smallest group whose figures are reported.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`group_exposure_table`, one row per group in the given order.

    Examples
    --------
    >>> import numpy as np
    >>> table = exposure_table_from_sums(
    ...     np.array(["a", "b", "c"]), np.array([3, 2, 1]), np.array([3.0, 6.0, 9.0]),
    ...     n_members=6, total=18.0, min_group_size=2,
    ... )
    >>> table[["group", "members", "ratio", "suppressed"]]
      group  members     ratio  suppressed
    0     a        3  0.333333       False
    1     b        2  1.000000       False
    2     c     <NA>       NaN        True
    """
    members = np.asarray(members, dtype=np.int64)
    suppressed = members < min_group_size
    with np.errstate(invalid="ignore", divide="ignore"):
        population_share = members / n_members
        exposure_share = np.asarray(exposure, dtype=np.float64) / total
        ratio = exposure_share / population_share
    table = pd.DataFrame(
        {
            "group": np.asarray(groups, dtype=object),
            "members": pd.array(members, dtype="Int64"),
            "population_share": population_share,
            "exposure_share": exposure_share,
            "ratio": ratio,
            "suppressed": suppressed,
        }
    )
    table.loc[suppressed, ["population_share", "exposure_share", "ratio"]] = np.nan
    table["members"] = table["members"].mask(suppressed)
    if suppressed.any():
        _LOGGER.debug("exposure table: %d group(s) suppressed", int(suppressed.sum()))
    return table


def _min_over_max(figures: pd.Series) -> float:
    values = figures.to_numpy(dtype=np.float64)
    if values.shape[0] < 2 or np.isnan(values).any():
        return float("nan")
    high = values.max()
    if high <= 0:
        return float("nan")
    return float(values.min() / high)


def exposure_ratio(exposure: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20) -> float:
    r"""Parity of exposure across groups: the smallest group ratio divided by the largest.

    .. math:: \frac{\min_g \mathrm{ratio}_g}{\max_g \mathrm{ratio}_g}

    over groups that are not suppressed, with :math:`\mathrm{ratio}_g` from
    :func:`group_exposure_table` (the min/max form of fairlearn's
    ``demographic_parity_ratio``). 1.0 is parity, 0 means some group gets no exposure.
    Suppressed groups do not enter; they cannot move the result either, since every ratio
    shares the same ``N / E`` factor.

    Parameters
    ----------
    exposure : (n,) array of non-negative numbers
    groups : (n,) array of str
    min_group_size : int

    Returns
    -------
    float in [0, 1]; NaN with fewer than 2 unsuppressed groups or no exposure at all.

    Examples
    --------
    >>> import numpy as np
    >>> groups = np.array(["a", "a", "b", "b"])
    >>> exposure_ratio(np.array([1, 1, 2, 2]), groups, min_group_size=1)
    0.5
    """
    table = group_exposure_table(exposure, groups, min_group_size=min_group_size)
    return _min_over_max(table.loc[~table["suppressed"], "ratio"])


def group_recall_table(
    per_member_recall: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20
) -> pd.DataFrame:
    r"""Mean recall of the ranked members of each group (quality of service).

    .. math:: \mathrm{recall}_g = \frac{1}{|M_g|} \sum_{u \in M_g} \mathrm{recall@}k(u)

    where :math:`M_g` are the members of ``g`` with a recall value (NaN recalls, from members
    without held-out connections, are ignored). The harm measured is quality of service
    (fairlearn user guide, "Types of harms"). Aggregated with ``fairlearn.metrics.MetricFrame``.
    Groups with fewer than ``min_group_size`` members with a recall are suppressed; a group
    whose members all lack a recall appears, suppressed.

    Parameters
    ----------
    per_member_recall : (R,) float array
        E.g. :func:`recall_at_k`, one value per ranked member; NaN allowed.
    groups : (R,) array of str
        Group of each ranked member (``labels[member_rows]``).
    min_group_size : int

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by label: ``group``, ``members`` (nullable Int64, members
        with a recall), ``mean_recall`` (float64) and ``suppressed`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> recall = np.array([0.5, 1.0, np.nan, 0.25, 0.25])
    >>> group_recall_table(recall, np.array(["a", "a", "a", "b", "b"]), min_group_size=2)
      group  members  mean_recall  suppressed
    0     a        2         0.75       False
    1     b        2         0.25       False
    """
    recall = np.asarray(per_member_recall, dtype=np.float64)
    if recall.ndim != 1:
        raise ValueError(f"per_member_recall must be 1-D, got shape {recall.shape}")
    labels = _as_labels(groups, n=recall.shape[0])
    all_groups = np.unique(labels)
    known = ~np.isnan(recall)
    if known.any():
        frame = _by_group(
            recall[known], labels[known], {"members": _group_count, "mean_recall": _group_mean}
        ).reindex(all_groups)
    else:
        frame = pd.DataFrame(
            {"members": np.nan, "mean_recall": np.nan}, index=pd.Index(all_groups)
        )
    members = frame["members"].fillna(0).to_numpy(dtype=np.int64)
    suppressed = members < min_group_size
    table = pd.DataFrame(
        {
            "group": all_groups.astype(object).astype(str),
            "members": pd.array(members, dtype="Int64"),
            "mean_recall": frame["mean_recall"].to_numpy(dtype=np.float64),
            "suppressed": suppressed,
        }
    )
    table.loc[suppressed, "mean_recall"] = np.nan
    table["members"] = table["members"].mask(suppressed)
    return table


def recall_ratio(
    per_member_recall: ArrayLike, groups: ArrayLike, *, min_group_size: int = 20
) -> float:
    r"""Smallest group mean recall divided by the largest.

    .. math:: \frac{\min_g \mathrm{recall}_g}{\max_g \mathrm{recall}_g}

    over groups not suppressed in :func:`group_recall_table` (the ratio form of fairlearn's
    between-group comparisons, e.g. ``MetricFrame.ratio(method="between_groups")``).

    Parameters
    ----------
    per_member_recall : (R,) float array, NaN allowed
    groups : (R,) array of str
    min_group_size : int

    Returns
    -------
    float in [0, 1]; NaN with fewer than 2 unsuppressed groups or when every group's recall is
    0.

    Examples
    --------
    >>> import numpy as np
    >>> recall = np.array([0.5, 1.0, np.nan, 0.25, 0.25])
    >>> recall_ratio(recall, np.array(["a", "a", "a", "b", "b"]), min_group_size=2)
    0.3333333333333333
    """
    table = group_recall_table(per_member_recall, groups, min_group_size=min_group_size)
    return _min_over_max(table.loc[~table["suppressed"], "mean_recall"])
