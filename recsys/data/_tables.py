"""Files: reading one table, finding the tables in a data directory, loading and writing them.

A data directory holds each table as exactly one of ``NAME.csv``, ``NAME.csv.gz`` or
``NAME.parquet``. Writing goes through :func:`recsys._io.write_frame`, the library's one atomic
write.
"""

from __future__ import annotations

import csv
import difflib
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
from recsys.data._build import PATH_ATTR, network_from_frames
from recsys.data._network import Network
from recsys.data._validation import (
    NA_TOKENS,
    TABLES,
    DataValidationError,
    _as_str,
    _na_mask,
    _TableSource,
    _to_arrow,
    first_bad_utf8,
    open_csv_text,
    physical_line,
)

logger = logging.getLogger(__name__)

REQUIRED_TABLES: tuple[str, ...] = ("members", "interests", "connections")
SUFFIXES: tuple[str, ...] = tuple(TABLE_FORMATS.values())
_LONGEST_FIRST = sorted(SUFFIXES, key=len, reverse=True)
# Columns always read as strings, with no NA interpretation: "NA" is a valid member id.
ID_COLUMNS: frozenset[str] = frozenset({"member_id", "member_a", "member_b", "broker", "interest"})
# Columns kept as text for network_from_frames to parse, so that it can tell an empty cell from
# "NaN" written out (an empty weight is 1; "NaN" is a mistake).
TEXT_COLUMNS: frozenset[str] = frozenset({"weight"})
_LEADING_ZERO = r"^[+-]?0[0-9]"


def _header(path: str, name: str) -> list[str]:
    """The CSV header (its first non-blank record); errors name the line of a bad byte."""
    try:
        with open_csv_text(path) as handle:
            for record in csv.reader(handle):
                if record:
                    return record
    except UnicodeDecodeError:
        raise _not_utf8(path, name) from None
    except (OSError, csv.Error, EOFError) as exc:
        raise DataValidationError(f"cannot read the header: {exc}", path=name, line=1) from exc
    return []


def _not_utf8(path: str, name: str) -> DataValidationError:
    found = first_bad_utf8(path)
    line, byte = found if found is not None else (None, None)
    shown = f" (byte {byte:#04x})" if byte is not None else ""
    return DataValidationError(
        f"not UTF-8 text{shown}: save the file as UTF-8 (CSV UTF-8 in a spreadsheet)",
        path=name,
        line=line,
    )


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
    if pc.any(pc.match_substring_regex(cleaned, _LEADING_ZERO)).as_py():
        # "007" is a code, not the number 7: the column stays text (stripped, NA missing)
        out = pd.Series(
            np.asarray(cleaned.to_numpy(zero_copy_only=False), dtype=object),
            index=series.index,
            name=series.name,
        )
        return out
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
    lower = name.lower()
    source = _TableSource(name, path=None if lower.endswith(".parquet") else path)
    if lower.endswith(".parquet"):
        return _read_parquet(path, name)
    if not (lower.endswith(".csv") or lower.endswith(".csv.gz")):
        raise DataValidationError(
            "unknown file type (expected .csv, .csv.gz or .parquet)", path=name
        )
    header = _header(path, name)
    if not header:
        raise DataValidationError("file is empty (no header line)", path=name, line=1)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise source.error(f"repeated column name(s): {', '.join(repeated)}", header=True)
    for position, column in enumerate(header, 1):
        if not column.strip():
            hint = (
                ": it looks like a DataFrame index written with the table; write the table "
                "with index=False, or name the column"
                if position == 1
                else "; name it, or remove it"
            )
            raise source.error(f"column {position} has no name{hint}", header=True)
    convert = pa_csv.ConvertOptions(
        column_types={column: pa.large_string() for column in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pa_csv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower() or "utf-8" in str(exc).lower():
            raise _not_utf8(path, name) from None
        raise _csv_parse_error(path, name, convert, exc) from exc
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(f"cannot parse CSV: {exc}", path=name) from exc
    frame = table.to_pandas()
    for column in frame.columns:
        if column not in ID_COLUMNS and column not in TEXT_COLUMNS:
            frame[column] = _infer_column(frame[column])
    frame.attrs[PATH_ATTR] = path  # rows are found on their lines in messages
    return frame


def _read_parquet(path: str, name: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataValidationError(f"cannot read Parquet file: {exc}", path=name) from exc
    if any(level is not None for level in frame.index.names):
        # a column saved as the index (frame.set_index("member_id").to_parquet()) is a column
        frame = frame.reset_index()
    else:
        frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if column in ID_COLUMNS:
            values = frame[column]
            if pd.api.types.is_float_dtype(values.dtype):
                _check_float_ids(values, column, name)
            frame[column] = _as_str(values)
        elif not pd.api.types.is_numeric_dtype(frame[column].dtype) and not (
            pd.api.types.is_bool_dtype(frame[column].dtype)
            or pd.api.types.is_datetime64_any_dtype(frame[column].dtype)
        ):
            frame[column] = _text_cells(frame[column])
    return frame


def _check_float_ids(values: pd.Series, column: str, name: str) -> None:
    """Ids in a float column must be whole numbers (2.0 is the id "2"); inf or 2.5 is an error."""
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isnan(numbers) & ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataValidationError(
            f"{column} {float(numbers[row])!r} is not an id (ids are text or whole numbers)",
            path=name,
            line=row + 1,
            unit="row",
        )


def _text_cells(series: pd.Series) -> pd.Series:
    """A Parquet text column read as a CSV one is: stripped, empty and NA tokens missing."""
    is_text = series.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_text.any():
        return series  # not a text column (lists, bytes, ...)
    stripped = series.map(lambda v: v.strip() if isinstance(v, str) else v)
    missing = is_text & stripped.isin(NA_TOKENS).to_numpy(dtype=bool)
    return stripped.mask(missing) if missing.any() else stripped


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
        number, problem = found[0]  # pyarrow numbers the header 1 and skips blank lines
        line = physical_line(path, number - 2) if number is not None else None
        return DataValidationError(problem, path=name, line=line or number)
    return DataValidationError(f"cannot parse CSV: {exc}", path=name)


def _find_tables(root: str) -> dict[str, str]:
    """Each table's file (``.CSV`` as well as ``.csv``); a file whose name is close to a table's
    but not one (``introduction.csv``) is an error, not silently left out."""
    files = {entry.name.lower(): entry.name for entry in os.scandir(root) if entry.is_file()}
    for lower, actual in files.items():
        suffix = next(
            (x for x in sorted(SUFFIXES, key=len, reverse=True) if lower.endswith(x)), None
        )
        if suffix is None:
            continue
        stem = lower[: -len(suffix)]
        if stem in TABLES:
            continue
        close = difflib.get_close_matches(stem, TABLES, n=1, cutoff=0.75)
        if close:
            raise DataValidationError(
                f"{actual} is not a table name; did you mean {close[0]}{suffix}? (a data "
                f"directory holds {', '.join(TABLES)})",
                path=root,
            )
        logger.warning(
            "%s: %s is not one of the tables (%s); ignored", root, actual, ", ".join(TABLES)
        )
    found: dict[str, str] = {}
    for table in TABLES:
        candidates = [table + suffix for suffix in SUFFIXES]
        present = [files[c] for c in candidates if c in files]
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
