"""Files: reading one table, finding the tables in a data directory, loading and writing them.

A data directory holds each table as exactly one of ``NAME.csv``, ``NAME.csv.gz`` or
``NAME.parquet``. Writing goes through :func:`recsys._io.write_frame`, the library's one atomic
write.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from recsys._io import TABLE_FORMATS, write_frame
from recsys.data._build import network_from_frames
from recsys.data._network import Network
from recsys.data._validation import (
    TABLES,
    DataValidationError,
    _as_str,
    _na_mask,
    _TableSource,
    _to_arrow,
)

logger = logging.getLogger(__name__)

REQUIRED_TABLES: tuple[str, ...] = ("members", "interests", "connections")
SUFFIXES: tuple[str, ...] = tuple(TABLE_FORMATS.values())
# Columns always read as strings, with no NA interpretation: "NA" is a valid member id.
ID_COLUMNS: frozenset[str] = frozenset({"member_id", "member_a", "member_b", "broker", "interest"})


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115


def _infer_column(series: pd.Series) -> pd.Series:
    """CSV attribute column read as text -> int64 / float64 when every present cell is a number,
    else str with NA tokens as missing. Done by hand (not by the CSV reader) so the type does not
    depend on which rows the reader happened to sample."""
    values = _to_arrow(series)
    text = pc.utf8_trim_whitespace(values)
    missing = _na_mask(text)
    if missing.all():
        return pd.Series(np.full(len(series), np.nan), index=series.index, name=series.name)
    cleaned = (
        pc.if_else(pa.array(missing), pa.scalar(None, pa.large_string()), text)
        if missing.any()
        else text
    )
    if not missing.any():
        try:
            return pd.Series(
                np.asarray(pc.cast(cleaned, pa.int64()).to_numpy(zero_copy_only=False)),
                index=series.index,
                name=series.name,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    try:
        floats = pc.cast(cleaned, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return series.mask(missing) if missing.any() else series
    return pd.Series(
        np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64),
        index=series.index,
        name=series.name,
    )


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read one table from ``.csv``, ``.csv.gz`` or ``.parquet``.

    Id columns (``member_id``, ``member_a``, ``member_b``, ``broker``) and ``interest`` are read
    as strings exactly as written ("NA" stays an id; an empty cell is ``""``). In CSV files the
    other columns become int64 / float64 when every non-empty cell is a number, otherwise strings
    with empty cells and NA tokens ("", "NA", "null", ...) missing. Parquet columns keep their
    types (id columns are converted to strings). Blank lines in CSV files are skipped and not
    counted: data row ``i`` is reported as line ``i + 2``.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    DataFrame
        One row per data row, RangeIndex.

    Raises
    ------
    DataValidationError
        Unreadable or malformed file, or an unknown extension.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    source = _TableSource(name)
    if name.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataValidationError(f"cannot read Parquet file: {exc}", path=name) from exc
        frame = frame.reset_index(drop=True)
        for column in frame.columns:
            if column in ID_COLUMNS:
                frame[column] = _as_str(frame[column])
        return frame
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise DataValidationError(
            "unknown file type (expected .csv, .csv.gz or .parquet)", path=name
        )
    try:
        with _open_text(path) as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise DataValidationError(f"cannot read the header: {exc}", path=name, line=1) from exc
    if not header:
        raise DataValidationError("file is empty (no header line)", path=name, line=1)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise source.error(f"repeated column name(s): {', '.join(repeated)}", header=True)
    convert = pa_csv.ConvertOptions(
        column_types={column: pa.large_string() for column in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pa_csv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise _csv_parse_error(path, name, convert, exc) from exc
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(f"cannot parse CSV: {exc}", path=name) from exc
    frame = table.to_pandas()
    for column in frame.columns:
        if column not in ID_COLUMNS:
            frame[column] = _infer_column(frame[column])
    return frame


def _csv_parse_error(
    path: str, name: str, convert: pa_csv.ConvertOptions, exc: Exception
) -> DataValidationError:
    """Locate a malformed CSV row: only a single-threaded read tells which row it is."""
    found: list[tuple[int | None, str]] = []

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        found.append(
            (
                row.number,
                f"expected {row.expected_columns} columns, got {row.actual_columns}: {row.text!r}",
            )
        )
        return "error"

    try:
        pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=convert,
        )
    except (OSError, pa.ArrowException):
        pass
    if found:
        number, problem = found[0]  # pyarrow numbers the header 1 and skips blank lines, as we do
        return DataValidationError(problem, path=name, line=number)
    return DataValidationError(f"cannot parse CSV: {exc}", path=name)


def _find_tables(root: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for table in TABLES:
        candidates = [table + suffix for suffix in SUFFIXES]
        present = [c for c in candidates if os.path.isfile(os.path.join(root, c))]
        if len(present) > 1:
            raise DataValidationError(
                f"more than one {table} table ({', '.join(present)}); keep exactly one", path=root
            )
        if present:
            found[table] = present[0]
        elif table in REQUIRED_TABLES:
            raise DataValidationError(
                f"no {table} table (looked for {', '.join(candidates)})", path=root
            )
    return found


def load_network(
    data_dir: str | os.PathLike, *, sensitive_attributes: Sequence[str] = ()
) -> Network:
    """Load and validate a data directory in the input layout.

    Parameters
    ----------
    data_dir : str or PathLike
        Directory holding ``members``, ``interests``, ``connections`` and optionally
        ``introductions``, each as exactly one of ``NAME.csv``, ``NAME.csv.gz``,
        ``NAME.parquet``.
    sensitive_attributes : sequence of str
        Member columns that are self-identified demographics (from the config).

    Returns
    -------
    Network

    Raises
    ------
    DataValidationError
        Missing directory or table, two files for one table, or bad content (see
        :func:`network_from_frames`); the message names the file, line and problem.

    Examples
    --------
    >>> net = load_network("data/", sensitive_attributes=["gender"])  # doctest: +SKIP
    """
    root = os.fspath(data_dir)
    if not os.path.isdir(root):
        raise DataValidationError("data directory does not exist", path=root)
    started = time.perf_counter()
    files = _find_tables(root)
    frames = {table: read_table(os.path.join(root, file)) for table, file in files.items()}
    logger.info(
        "read %s from %s in %.1f s", ", ".join(files.values()), root, time.perf_counter() - started
    )
    return network_from_frames(
        frames["members"],
        frames["interests"],
        frames["connections"],
        introductions=frames.get("introductions"),
        sensitive_attributes=sensitive_attributes,
        sources=files,
    )


def write_tables(
    tables: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike,
    *,
    fmt: Literal["csv", "csv.gz", "parquet"] = "csv.gz",
) -> None:
    """Write tables as ``OUT_DIR/NAME.FMT``, each atomically (temporary file, then rename).

    Another copy of the same table in a different format (say ``members.csv`` when writing
    ``members.parquet``) is removed, since a data directory must hold exactly one.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Table name (e.g. ``"members"``) -> contents. The index is not written.
    out_dir : str or PathLike
        Created if needed.
    fmt : {"csv", "csv.gz", "parquet"}
    """
    if fmt not in ("csv", "csv.gz", "parquet"):
        raise ValueError(f"fmt must be 'csv', 'csv.gz' or 'parquet', got {fmt!r}")
    root = os.fspath(out_dir)
    os.makedirs(root, exist_ok=True)
    for name, frame in tables.items():
        if not name or os.path.basename(name) != name or name.startswith("."):
            raise ValueError(f"table name must be a plain file name, got {name!r}")
        target = os.path.join(root, f"{name}.{fmt}")
        write_frame(frame, target, fmt=fmt)
        for suffix in SUFFIXES:
            other = os.path.join(root, name + suffix)
            if suffix != f".{fmt}" and os.path.isfile(other):
                os.unlink(other)
                logger.info("removed %s (replaced by %s)", other, target)
        logger.debug("wrote %s (%d rows)", target, len(frame))
