"""Batch ranking to a file: the offline precompute a backend runs (DESIGN.md columns)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsys import IntroductionRecommender, write_frame

__all__ = ["write_batch_ranking", "slates_frame", "write_slates_file"]


def slates_frame(
    model: IntroductionRecommender, member_rows: np.ndarray, ids: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """Long table ``member_id, rank, other_id, score`` (rank from 1), padding dropped."""
    r, j = np.nonzero(ids >= 0)
    names = model.network_.member_ids
    return pd.DataFrame(
        {
            "member_id": names[member_rows[r]].astype(str),
            "rank": (j + 1).astype(np.int32),
            "other_id": names[ids[r, j]].astype(str),
            "score": scores[r, j].astype(np.float32),
        }
    )


def write_batch_ranking(
    model: IntroductionRecommender,
    member_rows: np.ndarray,
    *,
    k: int,
    output: Path,
    batch_size: int = 4000,
) -> int:
    """Rank ``member_rows`` (recipient capacity held across all of them) and write the table
    atomically; returns the number of rows."""
    with tqdm(
        total=len(member_rows), unit="members", disable=not sys.stderr.isatty(), leave=False
    ) as bar:
        ids, scores = model.rank_batch(member_rows, k, batch_size=batch_size, progress=bar.update)
    return write_slates_file(slates_frame(model, member_rows, ids, scores), output)


def write_slates_file(frame: pd.DataFrame, output: Path) -> int:
    """Write a :func:`slates_frame` table as CSV or Parquet (by ``output``'s extension),
    atomically (:func:`recsys.atomic_write`), so a failure leaves no half-written file. Returns
    the number of rows. Both engines (local and Spark) write through here."""
    write_frame(frame, output)
    return len(frame)
