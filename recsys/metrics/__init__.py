"""Relevance, reach and equity metrics for batches of introduction slates.

The public functions are re-exported here from private modules of one concern each:

- ``_relevance``: :func:`recall_at_k`, :func:`ndcg_at_k`;
- ``_reach``: :func:`exposure_counts`, :func:`coverage`, :func:`max_inbound_share`,
  :func:`bridge_rate`, :func:`within_two_hops`, :func:`plus_one_balance`, :func:`reach`,
  :func:`network_size_tiers`;
- ``_inequality``: :func:`gini`, :func:`atkinson`, :func:`atkinson_bootstrap`,
  :func:`lorenz_curve`;
- ``_group_equity``: :func:`group_exposure_table`, :func:`exposure_table_from_sums`,
  :func:`exposure_ratio`, :func:`group_recall_table`, :func:`recall_ratio`;
- ``_rank_fairness``: :func:`skew_at_k`, :func:`ndkl`;
- ``_checks``: the input checks they share.

Conventions shared by every function here:

- members are integer rows ``0..n-1``;
- a batch of slates is ``member_rows: (R,) int32`` and ``slate_ids: (R, K) int32``, best first,
  padded with ``-1`` where a slate is shorter;
- an id repeated inside one slate counts once (its first, best-ranked occurrence);
- ``adjacency`` is a CSR ``(n, n)`` symmetric 0/1 matrix (the training graph); any nonzero entry
  is a connection;
- group labels are ``(n,)`` arrays of strings; a missing label is an error (map it to
  ``"undisclosed"`` before calling: members are never dropped silently).

The flat names under which these figures are logged (``recall_at_K``, ``exposure_gini``, ...)
are fixed in ``DESIGN.md`` ("Metric names"); this package only computes them.
"""

from recsys.metrics._group_equity import (
    exposure_ratio,
    exposure_table_from_sums,
    group_exposure_table,
    group_recall_table,
    recall_ratio,
)
from recsys.metrics._inequality import atkinson, atkinson_bootstrap, gini, lorenz_curve
from recsys.metrics._rank_fairness import ndkl, skew_at_k
from recsys.metrics._reach import (
    NETWORK_SIZE_TIERS,
    bridge_rate,
    coverage,
    exposure_counts,
    max_inbound_share,
    network_size_tiers,
    plus_one_balance,
    reach,
    within_two_hops,
)
from recsys.metrics._relevance import ndcg_at_k, recall_at_k

__all__ = [
    "NETWORK_SIZE_TIERS",
    "atkinson",
    "atkinson_bootstrap",
    "bridge_rate",
    "coverage",
    "exposure_counts",
    "exposure_ratio",
    "exposure_table_from_sums",
    "gini",
    "group_exposure_table",
    "group_recall_table",
    "lorenz_curve",
    "max_inbound_share",
    "ndcg_at_k",
    "ndkl",
    "network_size_tiers",
    "plus_one_balance",
    "reach",
    "recall_at_k",
    "recall_ratio",
    "skew_at_k",
    "within_two_hops",
]
