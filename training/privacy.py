"""What a job's reports may show: per-group tables without the groups too small to report, and
per-member outcomes in an order that does not follow the member table.

A group under ``data.min_group_size`` members is suppressed in every report: not only its
figures but its label, since a rare value of a self-identified attribute ("a group of 5") says
something about those 5 people by itself. The per-member table carries no id, and its rows are
shuffled with a seed from the config, so its row order cannot be joined back to the members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["publishable_tables", "shuffled_rows"]


def publishable_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The per-group tables without their suppressed rows (label and all).

    Examples
    --------
    >>> table = pd.DataFrame({"group": ["a", "rare"], "members": [40, None], "suppressed": [False, True]})
    >>> publishable_tables({"equity/x/exposure": table})["equity/x/exposure"]["group"].tolist()
    ['a']
    """  # noqa: E501 (a doctest line)
    out = {}
    for name, table in tables.items():
        if "suppressed" in table.columns:
            table = table.loc[~table["suppressed"].astype(bool)].reset_index(drop=True)
        out[name] = table
    return out


def shuffled_rows(frame: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """``frame``'s rows in a seeded random order (a fresh RangeIndex)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)
