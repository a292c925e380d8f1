"""Checking the input tables: the error, the table's file and line, and parsing cell values.

Every problem with the input is a :class:`DataValidationError` naming the file, the line (or
Parquet row) and the problem; :class:`_TableSource` knows how a table's rows are numbered in its
file. The value helpers parse whole columns at once (numbers, times, blanks, NA tokens) through
pyarrow compute kernels: arrow's string -> float cast runs ~30x faster than ``pd.to_numeric`` on
text.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TABLES: tuple[str, ...] = ("members", "interests", "connections", "introductions")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "members": ("member_id",),
    "interests": ("member_id", "interest"),
    "connections": ("member_a", "member_b"),
    "introductions": ("member_a", "member_b", "accepted"),
}
# Cells read as missing in columns other than ids (attribute, weight, time): pandas' default
# NA tokens.
NA_TOKENS: tuple[str, ...] = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
UNDISCLOSED = "undisclosed"
_TRUE_TOKENS = ("true", "t", "yes", "y", "1", "1.0")
_FALSE_TOKENS = ("false", "f", "no", "n", "0", "0.0")


# --------------------------------------------------------------------------------------------
# errors and sources
# --------------------------------------------------------------------------------------------


class DataValidationError(ValueError):
    """Bad input data: names the file, the line and the problem.

    ``str(err)`` reads like ``"connections.csv, line 7: member 'm99' is not in members.csv"``.
    Lines are numbered as in an editor: the header is line 1, so data row ``i`` (0-based) is line
    ``i + 2``. Parquet files have no header line; their data row ``i`` is reported as
    ``"row i + 1"``.

    Parameters
    ----------
    problem : str
        What is wrong, in words.
    path : str or None
        The file (or directory) the problem is in, as shown to the user.
    line : int or None
        1-based line (CSV) or row (Parquet) number, or None when the problem is not on one line.
    unit : {"line", "row"}
        How ``line`` is labelled in the message.

    Attributes
    ----------
    path : str or None
    line : int or None
    problem : str

    Examples
    --------
    >>> err = DataValidationError("self-connection of member 'm1'", path="connections.csv", line=4)
    >>> str(err)
    "connections.csv, line 4: self-connection of member 'm1'"
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        unit: Literal["line", "row"] = "line",
    ) -> None:
        self.problem = problem
        self.path = path
        self.line = line
        self.unit = unit
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where}, {self.unit} {self.line}" if where else f"{self.unit} {self.line}"
        return f"{where}: {self.problem}" if where else self.problem

    def __reduce__(self):  # keep path/line/problem across pickling (multiprocessing, Spark)
        return (_rebuild_error, (self.problem, self.path, self.line, self.unit))


def _rebuild_error(
    problem: str, path: str | None, line: int | None, unit: str
) -> DataValidationError:
    return DataValidationError(problem, path=path, line=line, unit=unit)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _TableSource:
    """A table's name as shown in messages, and how its rows are numbered.

    ``path``, when the table was read from a CSV file, lets a row be found on its line as an
    editor numbers it: blank lines (which the reader skips) and quoted fields that span lines
    move rows down, and the file is read again to count them, on the error path only.
    """

    name: str
    path: str | None = None

    @property
    def is_parquet(self) -> bool:
        return self.name.lower().endswith(".parquet")

    def number(self, row: int) -> int:
        """1-based line (CSV: header is line 1) or row (Parquet) of 0-based data row ``row``."""
        if self.is_parquet:
            return row + 1
        if self.path is not None:
            line = physical_line(self.path, row)
            if line is not None:
                return line
        return row + 2

    def where(self, row: int) -> str:
        return f"{'row' if self.is_parquet else 'line'} {self.number(row)}"

    def error(
        self, problem: str, *, row: int | None = None, header: bool = False
    ) -> DataValidationError:
        unit: Literal["line", "row"] = "row" if self.is_parquet else "line"
        if header:
            line = None if self.is_parquet else self.number(-1)
        elif row is not None:
            line = self.number(row)
        else:
            line = None
        return DataValidationError(problem, path=self.name, line=line, unit=unit)


def open_csv_text(path: str, *, errors: str = "strict") -> io.TextIOBase:
    """A CSV file (``.gz`` decompressed) as text for the csv module: UTF-8, a BOM dropped."""
    if path.lower().endswith(".gz"):
        return io.TextIOWrapper(
            gzip.open(path, "rb"), encoding="utf-8-sig", errors=errors, newline=""
        )
    return open(path, encoding="utf-8-sig", errors=errors, newline="")  # noqa: SIM115


def physical_line(path: str, row: int) -> int | None:
    """The line (1-based, as an editor counts, blank lines included) on which data row ``row``
    (0-based; -1 is the header) of a CSV file starts; None if the file has no such row.

    The CSV reader skips blank lines and a quoted field may span lines, so row ``i`` is on line
    ``i + 2`` only in a file with neither; this reads the file again to count, once, for a
    message.
    """
    try:
        with open_csv_text(path, errors="replace") as handle:
            reader = csv.reader(handle)
            seen = -2  # the header is record -1
            previous_end = 0
            for record in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if not record:
                    continue  # a blank line
                seen += 1
                if seen == row:
                    return start
    except (OSError, csv.Error, EOFError, ValueError):
        return None
    return None


def first_bad_utf8(path: str) -> tuple[int, int] | None:
    """``(line, byte)`` of the first byte of a file (``.gz`` decompressed) that is not UTF-8,
    lines counted as an editor counts them; None if it is all UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    opener = gzip.open if path.lower().endswith(".gz") else open
    lines = 0
    try:
        with opener(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as err:
                    at = max(err.start - pending, 0)
                    return lines + block[:at].count(b"\n") + 1, block[at]
                lines += block.count(b"\n")
    except (OSError, EOFError):
        return None
    return None


def _raise_first(
    source: _TableSource, checks: Sequence[tuple[np.ndarray | None, Callable[[int], str]]]
) -> None:
    """Raise for the earliest row flagged by any check; ties go to the earlier check."""
    best: tuple[int, Callable[[int], str]] | None = None
    for mask, describe in checks:
        if mask is None or not mask.any():
            continue
        row = int(np.argmax(mask))
        if best is None or row < best[0]:
            best = (row, describe)
    if best is not None:
        row, describe = best
        raise source.error(describe(row), row=row)


def _check_column_names(frame: pd.DataFrame, source: _TableSource) -> None:
    """No unnamed columns: an empty name is most often a DataFrame index written with it."""
    for position, column in enumerate(frame.columns, 1):
        name = str(column)
        if not name.strip() or name.startswith("Unnamed: "):
            hint = (
                ": it looks like a DataFrame index written with the table; write the table "
                "with index=False, or name the column"
                if position == 1
                else "; name it, or remove it"
            )
            raise source.error(f"column {position} has no name{hint}", header=True)


def _require_columns(frame: pd.DataFrame, table: str, source: _TableSource) -> None:
    found = [str(c) for c in frame.columns]
    for column in REQUIRED_COLUMNS[table]:
        if column not in frame.columns:
            shown = ", ".join(found) if found else "none"
            hint = ""
            for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
                if any(separator in c for c in found):
                    hint = f"; the columns look separated by {name}: a table is comma-separated"
                    break
            raise source.error(
                f"missing required column '{column}' (columns found: {shown}){hint}", header=True
            )


# --------------------------------------------------------------------------------------------
# vectorised column helpers
# --------------------------------------------------------------------------------------------


def _as_str(series: pd.Series) -> pd.Series:
    """The column as strings, missing values kept missing (ints in Parquet become "12")."""
    if isinstance(series.dtype, pd.StringDtype):
        return series
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        present = values[~np.isnan(values)]
        if np.isfinite(present).all() and np.array_equal(present, np.round(present)):
            series = series.astype("Int64")  # 2.0 is written "2", as an int column would be
    missing = series.isna().to_numpy()
    out = series.astype(str)
    if missing.any():
        out[missing] = np.nan
    return out


def _to_arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """String column -> arrow large_string array, missing -> null."""
    series = _as_str(series)
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = pa.array(series.to_numpy(dtype=object), from_pandas=True, type=pa.large_string())
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    return values


def _is_blank(series: pd.Series) -> np.ndarray:
    """(len,) bool: missing, or a string that is empty after stripping whitespace."""
    text = pc.utf8_trim_whitespace(_to_arrow(series))
    blank = pc.fill_null(pc.equal(text, ""), True)
    return _bool_numpy(blank)


def _na_mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """(len,) bool: null or one of :data:`NA_TOKENS`."""
    mask = pc.or_kleene(
        pc.is_null(values), pc.is_in(values, value_set=pa.array(NA_TOKENS, pa.large_string()))
    )
    return _bool_numpy(pc.fill_null(mask, True))


def _bool_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _float_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _fast_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """``(values, missing)`` when every present cell of a text column is a number, else None.

    Arrow's string -> float cast runs ~30x faster than ``pd.to_numeric`` on text.
    """
    try:
        text = pc.utf8_trim_whitespace(_to_arrow(series))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    missing = _na_mask(text)
    if missing.any():
        text = pc.if_else(pa.array(missing), pa.scalar(None, pa.large_string()), text)
    try:
        values = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _float_numpy(values), missing


def _text_missing(series: pd.Series) -> np.ndarray:
    try:
        return _na_mask(pc.utf8_trim_whitespace(_to_arrow(series)))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return series.isna().to_numpy()


def _parse_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Parse a column as numbers.

    Returns
    -------
    values : (len,) float64, NaN where missing or unparseable
    missing : (len,) bool, the cell is empty / an NA token
    bad : (len,) bool or None, the cell is present but not a number (None: no bad cells)
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isnan(values), None
    fast = _fast_numbers(series)
    if fast is not None:
        return fast[0], fast[1], None
    # Slow path, only when some cell is not a number: find which cells.
    missing = _text_missing(series)
    coerced = pd.to_numeric(series.astype(object).where(~missing), errors="coerce")
    values = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    return values, missing, np.isnan(values) & ~missing


_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _seconds(stamps: pd.Series) -> np.ndarray:
    """tz-aware datetimes -> (len,) float64 seconds since the epoch, NaN for NaT."""
    return ((stamps - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.float64, na_value=np.nan
    )


#: The latest epoch second a time may be (the year 5138): a larger number is milliseconds.
MAX_EPOCH_SECONDS = 1e11


def _parse_times(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a time column: numbers are epoch seconds, strings may be ISO 8601 dates.

    Booleans, infinities and numbers past :data:`MAX_EPOCH_SECONDS` (epoch milliseconds, most
    likely) are bad cells, not times.

    Returns
    -------
    seconds : (len,) float64 seconds since 1970-01-01 UTC, NaN where missing
    bad : (len,) bool or None, cells that are neither a number nor an ISO 8601 date
    """
    series = series.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan), ~series.isna().to_numpy()
    if series.dtype == object:
        flags = series.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        if flags.any():
            return np.full(len(series), np.nan), flags
    values, bad = _parse_times_raw(series)
    out_of_range = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAX_EPOCH_SECONDS)
    if out_of_range.any():
        bad = out_of_range if bad is None else bad | out_of_range
        values = np.where(out_of_range, np.nan, values)
    return values, bad


def _parse_times_raw(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _seconds(pd.to_datetime(series, utc=True)), None
    if pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), None
    fast = _fast_numbers(series)
    if fast is not None:
        return fast[0], None
    missing = _text_missing(series)
    text = series.astype(object).where(~missing)
    try:  # all dates: one vectorised parse
        return _seconds(pd.to_datetime(text, utc=True, format="ISO8601")), None
    except (ValueError, TypeError, OverflowError):
        pass
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    dates = _seconds(
        pd.to_datetime(text.where(np.isnan(numbers)), utc=True, format="ISO8601", errors="coerce")
    )
    values = np.where(np.isnan(numbers), dates, numbers)
    return values, np.isnan(values) & ~missing
