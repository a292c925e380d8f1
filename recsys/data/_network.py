"""The in-memory :class:`Network`: member ids, CSR matrices and attributes, by member row.

Small id lookups (:meth:`Network.rows_of`) use a pandas ``Index``; the bulk lookups when
building go through pyarrow (see :mod:`recsys.data._build`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data._validation import (
    _FALSE_TOKENS,
    _TRUE_TOKENS,
    _as_str,
    _parse_numbers,
    _TableSource,
)

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
    >>> from recsys import network_from_frames
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

    def source_name(self, table: str) -> str:
        """The file ``table`` was read from, as messages name it (e.g. ``members.csv``); the
        table's name when it did not come from a file."""
        return self._sources.get(table, table)

    def _members_source(self) -> _TableSource:
        return _TableSource(self._sources.get("members", "members"))

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
