"""Load and validate the input layout into one in-memory :class:`Network`.

A data directory holds the tables ``members``, ``interests`` and ``connections`` (and optionally
``introductions``), each as ``NAME.csv``, ``NAME.csv.gz`` or ``NAME.parquet``. Loading turns the
member ids into contiguous rows once, builds the member x member and member x interest CSR
matrices, and checks the input on the way: every problem is a :class:`DataValidationError`
naming the file, the line (or Parquet row) and the problem.

Bulk string work (id lookup, factorising interests, parsing numbers) goes through pyarrow
compute kernels rather than Python-object hashing: at 20M interest rows ``pd.Index.get_indexer``
on strings takes ~15 s and ``pc.index_in`` ~5 s. Small lookups (:meth:`Network.rows_of`) use a
pandas ``Index``.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import scipy.sparse as sp

from recsys._io import TABLE_FORMATS, write_frame

logger = logging.getLogger(__name__)

__all__ = [
    "DataValidationError",
    "Network",
    "load_network",
    "network_from_frames",
    "read_table",
    "write_tables",
]

TABLES: tuple[str, ...] = ("members", "interests", "connections", "introductions")
REQUIRED_TABLES: tuple[str, ...] = ("members", "interests", "connections")
SUFFIXES: tuple[str, ...] = tuple(TABLE_FORMATS.values())
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "members": ("member_id",),
    "interests": ("member_id", "interest"),
    "connections": ("member_a", "member_b"),
    "introductions": ("member_a", "member_b", "accepted"),
}
# Columns always read as strings, with no NA interpretation: "NA" is a valid member id.
ID_COLUMNS: frozenset[str] = frozenset({"member_id", "member_a", "member_b", "broker", "interest"})
# Cells read as missing in other (attribute, weight, time) columns: pandas' default NA tokens.
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
class _Source:
    """A table's name as shown in messages, and how its rows are numbered."""

    name: str

    @property
    def is_parquet(self) -> bool:
        return self.name.endswith(".parquet")

    def number(self, row: int) -> int:
        """1-based line (CSV: header is line 1) or row (Parquet) of 0-based data row ``row``."""
        return row + 1 if self.is_parquet else row + 2

    def where(self, row: int) -> str:
        return f"{'row' if self.is_parquet else 'line'} {self.number(row)}"

    def error(
        self, problem: str, *, row: int | None = None, header: bool = False
    ) -> DataValidationError:
        unit: Literal["line", "row"] = "row" if self.is_parquet else "line"
        if header:
            line = None if self.is_parquet else 1
        elif row is not None:
            line = self.number(row)
        else:
            line = None
        return DataValidationError(problem, path=self.name, line=line, unit=unit)


def _raise_first(
    source: _Source, checks: Sequence[tuple[np.ndarray | None, Callable[[int], str]]]
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


def _require_columns(frame: pd.DataFrame, table: str, source: _Source) -> None:
    found = [str(c) for c in frame.columns]
    for column in REQUIRED_COLUMNS[table]:
        if column not in frame.columns:
            shown = ", ".join(found) if found else "none"
            raise source.error(
                f"missing required column '{column}' (columns found: {shown})", header=True
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
        finite = values[np.isfinite(values)]
        if np.array_equal(finite, np.round(finite)):
            series = series.astype("Int64")
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


def _lookup(value_set: pa.Array, series: pd.Series) -> np.ndarray:
    """(len,) int32 position of each value in ``value_set``; -1 for unknown or missing."""
    found = pc.index_in(_to_arrow(series), value_set=value_set)
    found = pc.fill_null(found, -1)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks()
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int32)


def _factorize_sorted(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (len,) int32 into sorted uniques (k,) object array of str. No missing values."""
    values = _to_arrow(series)
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        if encoded.num_chunks == 0:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=object)
        dictionary = encoded.chunk(0).dictionary  # chunks share one dictionary
        indices = pa.chunked_array([c.indices for c in encoded.chunks]).combine_chunks()
    else:
        dictionary, indices = encoded.dictionary, encoded.indices
    order = np.asarray(pc.array_sort_indices(dictionary).to_numpy(), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = rank[np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    uniques = np.asarray(
        dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False), dtype=object
    )
    return codes, uniques


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


def _parse_times(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a time column: numbers are epoch seconds, strings may be ISO 8601 dates.

    Returns
    -------
    seconds : (len,) float64 seconds since 1970-01-01 UTC, NaN where missing
    bad : (len,) bool or None, cells that are neither a number nor an ISO 8601 date
    """
    series = series.reset_index(drop=True)
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _seconds(pd.to_datetime(series, utc=True)), None
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
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


def _labels(series: pd.Series) -> pd.Series:
    """Sensitive column -> strings, missing/blank -> "undisclosed"."""
    blank = _is_blank(series)
    out = _as_str(series).astype(object)
    out[blank] = UNDISCLOSED
    return out.astype(str).reset_index(drop=True)


def _clean_attributes(frame: pd.DataFrame) -> pd.DataFrame:
    """Empty strings in text columns become missing; RangeIndex."""
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
            empty = (series.astype(object) == "").to_numpy(dtype=bool)
            if empty.any():
                frame[column] = series.mask(empty)
    return frame


# --------------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------------


def _canonical_edges(
    a: np.ndarray, b: np.ndarray, times: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Undirected pairs once each, ``a < b``, sorted; duplicates merged keeping the earliest time.

    Returns ``(edges (E, 2) int32, times (E,) float64 or None)``.
    """
    lo = np.minimum(a, b).astype(np.int64)
    hi = np.maximum(a, b).astype(np.int64)
    key = lo * max(n, 1) + hi
    if times is None:
        key = np.unique(key)
        out_times = None
    else:
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = (
            np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        )
        out_times = (
            np.fmin.reduceat(np.asarray(times, dtype=np.float64)[order], starts)
            if len(key)
            else np.zeros(0, dtype=np.float64)
        )
        key = key[starts]
    edges = np.empty((len(key), 2), dtype=np.int32)
    edges[:, 0] = key // max(n, 1)
    edges[:, 1] = key % max(n, 1)
    return edges, out_times


def _adjacency(edges: np.ndarray, n: int) -> sp.csr_matrix:
    """(n, n) float32 symmetric CSR from canonical sorted edges, in O(nnz).

    The reverse half (row = b, col = a) in edge order has, within any row, increasing columns,
    all below the row; the forward half then adds increasing columns above it. scipy's
    COO -> CSR conversion is a stable counting sort, so the result has sorted indices without
    any sort.
    """
    rows = np.concatenate([edges[:, 1], edges[:, 0]])
    cols = np.concatenate([edges[:, 0], edges[:, 1]])
    data = np.ones(len(rows), dtype=np.float32)
    adjacency = sp.coo_matrix((data, (rows, cols)), shape=(n, n)).tocsr()
    adjacency.sum_duplicates()  # a no-op check on canonical input
    return adjacency


def _member_interests(
    rows: np.ndarray, codes: np.ndarray, weights: np.ndarray, n: int, m: int
) -> sp.csr_matrix:
    """(n, m) float32 CSR; duplicate (member, interest) rows are summed (in float64)."""
    matrix = sp.coo_matrix((weights.astype(np.float64), (rows, codes)), shape=(n, m)).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Network:
    """Members, their interests and connections, indexed by contiguous member rows.

    Row ``i`` of every member-indexed array is the member ``member_ids[i]``. Build one with
    :func:`load_network` or :func:`network_from_frames`.

    Attributes
    ----------
    member_ids : (n,) object ndarray of str
        Member id of each row, in the order of the members table.
    adjacency : scipy.sparse.csr_matrix, (n, n) float32
        1.0 per connection, symmetric, no diagonal, sorted indices, canonical.
    member_interests : scipy.sparse.csr_matrix, (n, m) float32
        Raw interest weights (> 0; duplicate rows summed), sorted indices.
    interest_names : (m,) object ndarray of str
        Name of each interest column, sorted.
    attributes : pandas.DataFrame
        n rows in row order with a RangeIndex: every member column except ``member_id`` and the
        sensitive ones. Empty text cells are missing (NaN).
    sensitive : pandas.DataFrame
        n rows, one str column per sensitive attribute; missing values are ``"undisclosed"``.
    connections : (E, 2) int32 ndarray
        Each undirected connection once as ``(a, b)`` rows with ``a < b``, sorted.
    connection_times : (E,) float64 ndarray or None
        Seconds since the epoch (UTC) aligned with ``connections`` (NaN if unknown; the earliest
        when a pair was listed twice), or None when the connections had no ``created_at``.
    introductions : pandas.DataFrame or None
        Past introductions: ``member_a``, ``member_b`` (int32 rows), ``accepted`` (int8 0/1),
        ``created_at`` (float64 seconds, NaN if unknown), ``broker`` (int32 row, -1 if none).

    Examples
    --------
    >>> import pandas as pd
    >>> net = network_from_frames(
    ...     pd.DataFrame({"member_id": ["a", "b", "c"]}),
    ...     pd.DataFrame({"member_id": ["a", "b"], "interest": ["jazz", "jazz"]}),
    ...     pd.DataFrame({"member_a": ["a", "c"], "member_b": ["b", "b"]}),
    ... )
    >>> net.n_members, net.n_interests, net.degrees.tolist()
    (3, 1, [1, 2, 1])
    >>> net.rows_of(["c", "zz"]).tolist()
    [2, -1]
    """

    member_ids: np.ndarray
    adjacency: sp.csr_matrix
    member_interests: sp.csr_matrix
    interest_names: np.ndarray
    attributes: pd.DataFrame
    sensitive: pd.DataFrame
    connections: np.ndarray
    connection_times: np.ndarray | None = None
    introductions: pd.DataFrame | None = None
    _sources: Mapping[str, str] = field(default_factory=dict)
    _id_index: pd.Index | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        n = len(self.member_ids)
        if self.adjacency.shape != (n, n):
            raise ValueError(f"adjacency has shape {self.adjacency.shape}, expected {(n, n)}")
        if self.member_interests.shape != (n, len(self.interest_names)):
            raise ValueError(
                f"member_interests has shape {self.member_interests.shape}, "
                f"expected {(n, len(self.interest_names))}"
            )
        if len(self.attributes) != n or len(self.sensitive) != n:
            raise ValueError("attributes and sensitive must have one row per member")
        if self.connection_times is not None and len(self.connection_times) != len(
            self.connections
        ):
            raise ValueError("connection_times must align with connections")

    def __repr__(self) -> str:
        return (
            f"Network(n_members={self.n_members}, n_interests={self.n_interests}, "
            f"n_connections={len(self.connections)}, attributes={list(self.attributes.columns)}, "
            f"sensitive={list(self.sensitive.columns)}, "
            f"introductions={None if self.introductions is None else len(self.introductions)})"
        )

    @property
    def n_members(self) -> int:
        """Number of members ``n``."""
        return len(self.member_ids)

    @property
    def n_interests(self) -> int:
        """Number of distinct interests ``m``."""
        return len(self.interest_names)

    @property
    def degrees(self) -> np.ndarray:
        """(n,) int32 number of connections of each member."""
        return np.diff(self.adjacency.indptr).astype(np.int32)

    def _index(self) -> pd.Index:
        index = self._id_index
        if index is None:
            index = pd.Index(self.member_ids)
            object.__setattr__(self, "_id_index", index)  # lazy cache on a frozen dataclass
        return index

    def rows_of(
        self, member_ids: str | Sequence[str] | np.ndarray | pd.Series | pd.Index
    ) -> np.ndarray:
        """Rows of the given member ids.

        Parameters
        ----------
        member_ids : str or sequence of str
            One id or many.

        Returns
        -------
        (len,) int32 ndarray
            Row of each id, ``-1`` for ids that are not members. A single id gives shape (1,).

        Examples
        --------
        >>> net.rows_of("b")  # doctest: +SKIP
        array([1], dtype=int32)
        """
        if isinstance(member_ids, str):
            # one id (every HTTP request): a hash lookup, not a new Index and get_indexer (~1 ms)
            try:
                row = self._index().get_loc(member_ids)
            except KeyError:
                row = -1
            if isinstance(row, (int, np.integer)):
                return np.array([row], dtype=np.int32)
            member_ids = [member_ids]
        query = pd.Index(member_ids)
        if len(query) and not (pd.api.types.is_string_dtype(query.dtype) or query.dtype == object):
            query = query.astype(str)
        return np.asarray(self._index().get_indexer(query), dtype=np.int32)

    def with_connections(
        self, connections: np.ndarray, connection_times: np.ndarray | None = None
    ) -> Network:
        """The same members, interests and attributes with another set of connections.

        Parameters
        ----------
        connections : (E, 2) int ndarray
            Member rows of each connection, either orientation; duplicates are merged.
        connection_times : (E,) float64 ndarray or None
            Seconds since the epoch per input row (the earliest is kept for merged pairs).

        Returns
        -------
        Network
            With ``adjacency``, ``connections`` and ``connection_times`` rebuilt.

        Raises
        ------
        ValueError
            Wrong shape, rows out of range, or a self-connection.
        """
        edges = np.asarray(connections)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ValueError(f"connections must have shape (E, 2), got {edges.shape}")
        if edges.size and not np.issubdtype(edges.dtype, np.integer):
            raise ValueError(f"connections must hold integer member rows, got dtype {edges.dtype}")
        edges = edges.astype(np.int64, copy=False)
        n = self.n_members
        if edges.size and (edges.min() < 0 or edges.max() >= n):
            raise ValueError(f"connection rows must lie in [0, {n})")
        loops = edges[:, 0] == edges[:, 1]
        if loops.any():
            raise ValueError(f"self-connection of member row {int(edges[np.argmax(loops), 0])}")
        times = None
        if connection_times is not None:
            times = np.asarray(connection_times, dtype=np.float64)
            if times.shape != (len(edges),):
                raise ValueError(
                    f"connection_times must have shape ({len(edges)},), got {times.shape}"
                )
        canonical, canonical_times = _canonical_edges(edges[:, 0], edges[:, 1], times, n)
        new = dataclasses.replace(
            self,
            adjacency=_adjacency(canonical, n),
            connections=canonical,
            connection_times=canonical_times,
        )
        object.__setattr__(new, "_id_index", self._id_index)
        return new

    def _members_source(self) -> _Source:
        return _Source(self._sources.get("members", "members"))

    def bool_attribute(self, column: str, *, default: bool) -> np.ndarray:
        """A yes/no member attribute such as ``open_to_intros`` or ``plus_one``.

        Accepts booleans, 1/0 and the strings true/false, yes/no, t/f, y/n (any case).

        Parameters
        ----------
        column : str
            Column of :attr:`attributes`.
        default : bool
            Value for missing cells, and for every member when the column is absent.

        Returns
        -------
        (n,) bool ndarray

        Raises
        ------
        DataValidationError
            A cell that is not a recognised yes/no value (names the members file and line).
        """
        n = self.n_members
        if column not in self.attributes.columns:
            return np.full(n, bool(default))
        series = self.attributes[column]
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.fillna(bool(default)).to_numpy(dtype=bool)
        if pd.api.types.is_numeric_dtype(series.dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            missing = np.isnan(values)
            bad = ~missing & (values != 0) & (values != 1)
            if bad.any():
                row = int(np.argmax(bad))
                raise self._members_source().error(
                    f"{column} must be a yes/no value, got {series.iloc[row]!r}", row=row
                )
            return np.where(missing, bool(default), values == 1)
        text = _as_str(series).str.strip().str.lower()
        missing = text.isna().to_numpy() | (text == "").to_numpy(dtype=bool, na_value=True)
        truthy = text.isin(_TRUE_TOKENS).to_numpy(dtype=bool)
        falsy = text.isin(_FALSE_TOKENS).to_numpy(dtype=bool)
        bad = ~missing & ~truthy & ~falsy
        if bad.any():
            row = int(np.argmax(bad))
            raise self._members_source().error(
                f"{column} must be true/false, yes/no or 1/0, got {series.iloc[row]!r}", row=row
            )
        return np.where(missing, bool(default), truthy)

    def numeric_attribute(self, column: str) -> np.ndarray | None:
        """A numeric member attribute such as ``capacity``.

        Returns
        -------
        (n,) float64 ndarray or None
            NaN for missing cells; None when the column is absent.

        Raises
        ------
        DataValidationError
            A cell that is not a number (names the members file and line).
        """
        if column not in self.attributes.columns:
            return None
        values, _, bad = _parse_numbers(self.attributes[column])
        if bad is not None and bad.any():
            row = int(np.argmax(bad))
            raise self._members_source().error(
                f"{column} must be a number, got {self.attributes[column].iloc[row]!r}", row=row
            )
        return values


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------


def network_from_frames(
    members: pd.DataFrame,
    interests: pd.DataFrame,
    connections: pd.DataFrame,
    *,
    introductions: pd.DataFrame | None = None,
    sensitive_attributes: Sequence[str] = (),
    sources: Mapping[str, str] | None = None,
) -> Network:
    """Validate the input tables and build a :class:`Network`.

    Parameters
    ----------
    members : DataFrame
        ``member_id`` plus any attribute columns; one row per member.
    interests : DataFrame
        ``member_id``, ``interest`` and optionally ``weight`` (finite, > 0; default 1, also for
        empty cells). Repeated (member, interest) rows are summed. May have no rows.
    connections : DataFrame
        ``member_a``, ``member_b`` and optionally ``created_at`` (epoch seconds or ISO 8601).
        Undirected; a pair listed as a-b and b-a (or twice) is one connection.
    introductions : DataFrame or None
        ``member_a``, ``member_b``, ``accepted`` (0/1), optionally ``created_at`` and ``broker``.
    sensitive_attributes : sequence of str
        Member columns that are self-identified demographics. They go to
        :attr:`Network.sensitive` (missing -> ``"undisclosed"``), not to ``attributes``.
    sources : mapping of str to str or None
        Table name -> file name used in error messages (default: the table name). A name ending
        in ``.parquet`` numbers rows from 1; otherwise row ``i`` is reported as line ``i + 2``.

    Returns
    -------
    Network

    Raises
    ------
    DataValidationError
        For the first problem found, naming the table, the line and the problem.
    """
    if isinstance(sensitive_attributes, str):
        raise TypeError("sensitive_attributes must be a sequence of column names, not one string")
    sensitive_attributes = list(dict.fromkeys(sensitive_attributes))
    names = {name: name for name in TABLES}
    if sources:
        names.update(sources)
    src = {name: _Source(names[name]) for name in TABLES}
    started = time.perf_counter()

    # members
    source = src["members"]
    _require_columns(members, "members", source)
    for column in sensitive_attributes:
        if column == "member_id" or column not in members.columns:
            shown = ", ".join(str(c) for c in members.columns)
            raise source.error(
                f"sensitive attribute '{column}' is not a member attribute column (columns "
                f"found: {shown})",
                header=True,
            )
    if len(members) == 0:
        raise source.error("no members: the table has no rows")
    ids = _as_str(members["member_id"]).reset_index(drop=True)
    blank = _is_blank(ids)
    duplicate = ids.duplicated(keep="first").to_numpy() & ~blank
    member_ids = ids.to_numpy(dtype=object)

    def _duplicate(row: int) -> str:
        first = int(np.flatnonzero(member_ids == member_ids[row])[0])
        return f"duplicate member_id {member_ids[row]!r} (first on {source.where(first)})"

    _raise_first(source, [(blank, lambda row: "empty member_id"), (duplicate, _duplicate)])
    n = len(member_ids)
    value_set = _to_arrow(ids)
    if isinstance(value_set, pa.ChunkedArray):
        value_set = value_set.combine_chunks()
    members_name = src["members"].name

    def _unknown(column: str, series: pd.Series, what: str = "member") -> Callable[[int], str]:
        def describe(row: int) -> str:
            value = series.iloc[row]
            if pd.isna(value) or str(value).strip() == "":
                return f"empty {column}"
            return f"{what} {str(value)!r} is not in {members_name}"

        return describe

    # interests
    source = src["interests"]
    _require_columns(interests, "interests", source)
    interest_rows = _lookup(value_set, interests["member_id"])
    interest_blank = _is_blank(interests["interest"])
    if "weight" in interests.columns:
        weights, weight_missing, weight_bad = _parse_numbers(interests["weight"])
        weights = np.where(weight_missing, 1.0, weights)
        bad_mask = weight_bad if weight_bad is not None else np.zeros(len(weights), dtype=bool)
        invalid = ~weight_missing & ~bad_mask & ~(np.isfinite(weights) & (weights > 0))
        weight_column = interests["weight"]
        weight_checks = [
            (weight_bad, lambda row: f"non-numeric weight {str(weight_column.iloc[row])!r}"),
            (
                invalid,
                lambda row: f"weight must be a finite number > 0, got {weight_column.iloc[row]!r}",
            ),
        ]
    else:
        weights = np.ones(len(interests), dtype=np.float64)
        weight_checks = []
    _raise_first(
        source,
        [
            (interest_rows < 0, _unknown("member_id", interests["member_id"])),
            (interest_blank, lambda row: "empty interest"),
            *weight_checks,
        ],
    )
    codes, interest_names = _factorize_sorted(interests["interest"])
    member_interests = _member_interests(interest_rows, codes, weights, n, len(interest_names))

    # connections
    source = src["connections"]
    _require_columns(connections, "connections", source)
    if len(connections) == 0:
        raise source.error("no connections: the table has no rows")
    rows_a = _lookup(value_set, connections["member_a"])
    rows_b = _lookup(value_set, connections["member_b"])
    self_loop = (rows_a == rows_b) & (rows_a >= 0)
    checks: list[tuple[np.ndarray | None, Callable[[int], str]]] = [
        (rows_a < 0, _unknown("member_a", connections["member_a"])),
        (rows_b < 0, _unknown("member_b", connections["member_b"])),
        (self_loop, lambda row: f"self-connection of member {member_ids[rows_a[row]]!r}"),
    ]
    times = None
    if "created_at" in connections.columns:
        created = connections["created_at"]
        times, time_bad = _parse_times(created)
        checks.append((time_bad, lambda row: _bad_time(created, row)))
    _raise_first(source, checks)
    edges, edge_times = _canonical_edges(rows_a, rows_b, times, n)
    adjacency = _adjacency(edges, n)

    # introductions
    intro_frame = None
    if introductions is not None:
        intro_frame = _introductions(
            introductions, src["introductions"], value_set, member_ids, _unknown
        )

    # attributes
    attributes = _clean_attributes(members.drop(columns=["member_id", *sensitive_attributes]))
    sensitive = pd.DataFrame(
        {column: _labels(members[column]) for column in sensitive_attributes},
        index=pd.RangeIndex(n),
    )

    network = Network(
        member_ids=member_ids,
        adjacency=adjacency,
        member_interests=member_interests,
        interest_names=interest_names,
        attributes=attributes,
        sensitive=sensitive,
        connections=edges,
        connection_times=edge_times,
        introductions=intro_frame,
        _sources=dict(names),
    )
    logger.info(
        "built network: %d members, %d interests (%d member-interest pairs), %d "
        "connections%s in %.1f s",
        n,
        len(interest_names),
        member_interests.nnz,
        len(edges),
        "" if intro_frame is None else f", {len(intro_frame)} introductions",
        time.perf_counter() - started,
    )
    return network


def _bad_time(column: pd.Series, row: int) -> str:
    return (
        f"cannot parse created_at {str(column.iloc[row])!r} (expected epoch seconds or an ISO "
        "8601 date)"
    )


def _introductions(
    frame: pd.DataFrame,
    source: _Source,
    value_set: pa.Array,
    member_ids: np.ndarray,
    unknown: Callable[..., Callable[[int], str]],
) -> pd.DataFrame:
    _require_columns(frame, "introductions", source)
    rows_a = _lookup(value_set, frame["member_a"])
    rows_b = _lookup(value_set, frame["member_b"])
    same = (rows_a == rows_b) & (rows_a >= 0)
    accepted, accepted_missing, accepted_bad = _parse_numbers(frame["accepted"])
    not_binary = accepted_missing | ~np.isin(accepted, (0.0, 1.0))
    accepted_column = frame["accepted"]
    times = np.full(len(frame), np.nan)
    time_bad = None
    if "created_at" in frame.columns:
        times, time_bad = _parse_times(frame["created_at"])
    broker = np.full(len(frame), -1, dtype=np.int32)
    broker_bad = None
    if "broker" in frame.columns:
        broker_blank = _is_blank(frame["broker"])
        broker = _lookup(value_set, frame["broker"])
        broker_bad = (broker < 0) & ~broker_blank
        broker = np.where(broker_blank, -1, broker).astype(np.int32)
    checks: list[tuple[np.ndarray | None, Callable[[int], str]]] = [
        (rows_a < 0, unknown("member_a", frame["member_a"])),
        (rows_b < 0, unknown("member_b", frame["member_b"])),
        (same, lambda row: f"introduction of member {member_ids[rows_a[row]]!r} to themself"),
        (not_binary, lambda row: f"accepted must be 0 or 1, got {accepted_column.iloc[row]!r}"),
    ]
    if "created_at" in frame.columns:
        created = frame["created_at"]
        checks.append((time_bad, lambda row: _bad_time(created, row)))
    if "broker" in frame.columns:
        checks.append((broker_bad, unknown("broker", frame["broker"], "broker")))
    _raise_first(source, checks)
    return pd.DataFrame(
        {
            "member_a": rows_a,
            "member_b": rows_b,
            "accepted": accepted.astype(np.int8),
            "created_at": times.astype(np.float64),
            "broker": broker,
        }
    )


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


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
    source = _Source(name)
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
