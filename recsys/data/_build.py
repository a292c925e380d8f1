"""Building a :class:`Network` from validated tables: ids to rows, and the CSR matrices.

:func:`network_from_frames` checks each table in turn (members, interests, connections,
introductions) and raises for the first problem; the checks themselves live in
:mod:`recsys.data._validation`. Bulk string work (id lookup, factorising interests) goes through
pyarrow compute kernels rather than Python-object hashing: at 20M interest rows
``pd.Index.get_indexer`` on strings takes ~15 s and ``pc.index_in`` ~5 s.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys.data._network import Network, _adjacency, _canonical_edges
from recsys.data._validation import (
    MAX_EPOCH_SECONDS,
    TABLES,
    UNDISCLOSED,
    DataValidationError,
    _as_str,
    _check_column_names,
    _is_blank,
    _parse_numbers,
    _parse_times,
    _raise_first,
    _require_columns,
    _TableSource,
    _to_arrow,
)

#: Columns that hold ids: stripped of surrounding whitespace wherever they come from.
ID_COLUMNS: frozenset[str] = frozenset({"member_id", "member_a", "member_b", "broker", "interest"})
#: Where ``read_table`` notes the file a frame was read from (for line numbers in messages).
PATH_ATTR = "plusone_path"

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# column helpers
# --------------------------------------------------------------------------------------------


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


def _member_interests(
    rows: np.ndarray, codes: np.ndarray, weights: np.ndarray, n: int, m: int
) -> sp.csr_matrix:
    """(n, m) float32 CSR; duplicate (member, interest) rows are summed (in float64)."""
    matrix = sp.coo_matrix((weights.astype(np.float64), (rows, codes)), shape=(n, m)).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix.astype(np.float32)


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
    given = {
        "members": members,
        "interests": interests,
        "connections": connections,
        "introductions": introductions,
    }
    src = {
        name: _TableSource(
            names[name], path=None if given[name] is None else given[name].attrs.get(PATH_ATTR)
        )
        for name in TABLES
    }
    for name, frame in given.items():
        if frame is not None:
            _check_column_names(frame, src[name])
    members, interests, connections = (
        _stripped_ids(members),
        _stripped_ids(interests),
        _stripped_ids(connections),
    )
    if introductions is not None:
        introductions = _stripped_ids(introductions)
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
        if not pd.api.types.is_numeric_dtype(interests["weight"].dtype):
            # in text only an empty cell means "the default weight": NaN, NA or null written
            # out is a mistake, not a weight of 1 (a number column's missing cells are empty)
            written = weight_missing & ~_is_blank(interests["weight"])
            if written.any():
                weight_bad = written if weight_bad is None else weight_bad | written
                weight_missing = weight_missing & ~written
        weights = np.where(weight_missing, 1.0, weights)
        bad_mask = weight_bad if weight_bad is not None else np.zeros(len(weights), dtype=bool)
        invalid = ~weight_missing & ~bad_mask & ~(np.isfinite(weights) & (weights > 0))
        weight_column = interests["weight"]
        weight_checks = [
            (
                weight_bad,
                lambda row: (
                    f"non-numeric weight {str(weight_column.iloc[row])!r} (a weight is a "
                    "number > 0, or empty for 1)"
                ),
            ),
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
    _check_operational(network, src["members"])
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
        f"cannot parse created_at {str(column.iloc[row])!r} (expected epoch seconds up to "
        f"{MAX_EPOCH_SECONDS:.0e}, where a larger number looks like milliseconds, or an ISO "
        "8601 date)"
    )


def _stripped_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its id columns as strings stripped of surrounding whitespace ("a " and
    "a" are one id; case is kept: "A" and "a" are two)."""
    columns = [c for c in frame.columns if c in ID_COLUMNS]
    if not columns:
        return frame
    frame = frame.copy(deep=False)
    for column in columns:
        values = pc.utf8_trim_whitespace(_to_arrow(frame[column]))
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        frame[column] = pd.Series(
            np.asarray(values.to_numpy(zero_copy_only=False), dtype=object),
            index=frame.index,
        )
    return frame


#: Operational member columns the library reads, and what each must hold.
_WHOLE_NUMBER_COLUMNS = ("capacity", "pledge_per_month")
_YES_NO_COLUMNS = ("open_to_intros", "plus_one")


def _check_operational(network: Network, source: _TableSource) -> None:
    """The member columns ranking reads, checked now rather than at fit time: yes/no flags,
    and capacities that are whole numbers of at least 0 (or empty)."""
    checked = dataclasses.replace(network, _sources={"members": source.name})
    for column in _YES_NO_COLUMNS:
        try:
            checked.bool_attribute(column, default=True)
        except DataValidationError as err:  # renumbered with the file's own lines
            raise source.error(err.problem, row=_row_of(err, source)) from None
    for column in _WHOLE_NUMBER_COLUMNS:
        try:
            values = checked.numeric_attribute(column)
        except DataValidationError as err:
            raise source.error(err.problem, row=_row_of(err, source)) from None
        if values is None:
            continue
        series = network.attributes[column]
        bad = ~np.isnan(values) & ~(
            np.isfinite(values) & (values >= 0) & (values == np.round(values))
        )
        _raise_first(
            source,
            [
                (
                    bad,
                    lambda row, column=column, series=series: (
                        f"{column} must be a whole number "
                        f"of at least 0 (or empty), got {str(series.iloc[row])!r}"
                    ),
                )
            ],
        )


def _row_of(err: DataValidationError, source: _TableSource) -> int | None:
    if err.line is None:
        return None
    return err.line - 1 if source.is_parquet else err.line - 2


def _introductions(
    frame: pd.DataFrame,
    source: _TableSource,
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
        (
            not_binary,
            lambda row: (
                "empty accepted (it must be 0 or 1)"
                if accepted_missing[row]
                else f"accepted must be 0 or 1, got {str(accepted_column.iloc[row])!r}"
            ),
        ),
    ]
    if "created_at" in frame.columns:
        created = frame["created_at"]
        checks.append((time_bad, lambda row: _bad_time(created, row)))
    if "broker" in frame.columns:
        checks.append((broker_bad, unknown("broker", frame["broker"], "broker")))
        broker_side = (broker >= 0) & ((broker == rows_a) | (broker == rows_b))
        checks.append(
            (
                broker_side,
                lambda row: (
                    f"broker {member_ids[broker[row]]!r} is one of the two members introduced"
                ),
            )
        )
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
