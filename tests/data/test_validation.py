"""Tests for recsys.data's checks: each error names the file, the exact line and the problem."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from recsys.data import DataValidationError, load_network, network_from_frames, write_tables

from .tiny import tiny_tables

Tables = dict[str, pd.DataFrame]


def _set(table: str, column: str, row: int, value: object) -> Callable[[Tables], None]:
    def change(tables: Tables) -> None:
        frame = tables[table].astype({column: object})
        frame.loc[row, column] = value
        tables[table] = frame

    return change


def _drop_column(table: str, column: str) -> Callable[[Tables], None]:
    def change(tables: Tables) -> None:
        tables[table] = tables[table].drop(columns=[column])

    return change


def _empty(table: str) -> Callable[[Tables], None]:
    def change(tables: Tables) -> None:
        tables[table] = tables[table].iloc[:0]

    return change


def _both(*changes: Callable[[Tables], None]) -> Callable[[Tables], None]:
    def change(tables: Tables) -> None:
        for one in changes:
            one(tables)

    return change


# (id, change, fmt, file, line, problem)
ERROR_CASES = [
    (
        "unknown-member-connection",
        _set("connections", "member_b", 5, "m99"),
        "csv",
        "connections.csv",
        7,
        "member 'm99' is not in members.csv",
    ),
    (
        "unknown-member-interest",
        _set("interests", "member_id", 2, "zz"),
        "csv.gz",
        "interests.csv.gz",
        4,
        "member 'zz' is not in members.csv.gz",
    ),
    (
        "duplicate-member-id",
        _set("members", "member_id", 4, "m2"),
        "csv",
        "members.csv",
        6,
        "duplicate member_id 'm2' (first on line 3)",
    ),
    (
        "empty-member-id",
        _set("members", "member_id", 2, ""),
        "csv",
        "members.csv",
        4,
        "empty member_id",
    ),
    (
        "self-connection",
        _set("connections", "member_b", 4, "m5"),
        "csv",
        "connections.csv",
        6,
        "self-connection of member 'm5'",
    ),
    (
        "missing-column",
        _drop_column("interests", "interest"),
        "csv",
        "interests.csv",
        1,
        "missing required column 'interest' (columns found: member_id, weight)",
    ),
    (
        "non-numeric-weight",
        _set("interests", "weight", 3, "heavy"),
        "csv",
        "interests.csv",
        5,
        "non-numeric weight 'heavy'",
    ),
    (
        "zero-weight",
        _set("interests", "weight", 1, 0.0),
        "csv",
        "interests.csv",
        3,
        "weight must be a finite number > 0",
    ),
    (
        "negative-weight",
        _set("interests", "weight", 4, -1.0),
        "csv",
        "interests.csv",
        6,
        "weight must be a finite number > 0",
    ),
    (
        "infinite-weight",
        _set("interests", "weight", 0, "inf"),
        "csv",
        "interests.csv",
        2,
        "weight must be a finite number > 0",
    ),
    (
        "bad-created-at",
        _set("connections", "created_at", 3, "last tuesday"),
        "csv",
        "connections.csv",
        5,
        "cannot parse created_at 'last tuesday'",
    ),
    (
        "empty-interest",
        _set("interests", "interest", 5, ""),
        "csv",
        "interests.csv",
        7,
        "empty interest",
    ),
    (
        "empty-connection-member",
        _set("connections", "member_a", 1, ""),
        "csv",
        "connections.csv",
        3,
        "empty member_a",
    ),
    (
        "intro-unknown-member",
        _set("introductions", "member_b", 1, "ghost"),
        "csv",
        "introductions.csv",
        3,
        "member 'ghost' is not in members.csv",
    ),
    (
        "intro-accepted-not-binary",
        _set("introductions", "accepted", 0, 2),
        "csv",
        "introductions.csv",
        2,
        "accepted must be 0 or 1",
    ),
    (
        "intro-accepted-text",
        _set("introductions", "accepted", 1, "maybe"),
        "csv",
        "introductions.csv",
        3,
        "accepted must be 0 or 1, got 'maybe'",
    ),
    (
        "intro-unknown-broker",
        _set("introductions", "broker", 1, "m42"),
        "csv",
        "introductions.csv",
        3,
        "broker 'm42' is not in members.csv",
    ),
    (
        "first-offending-row-wins",
        _both(_set("connections", "member_b", 4, "m5"), _set("connections", "member_a", 2, "m77")),
        "csv",
        "connections.csv",
        4,
        "member 'm77' is not in members.csv",
    ),
    (
        "parquet-rows",
        _set("connections", "member_b", 5, "m99"),
        "parquet",
        "connections.parquet",
        6,
        "member 'm99' is not in members.parquet",
    ),
    (
        "parquet-duplicate",
        _set("members", "member_id", 4, "m2"),
        "parquet",
        "members.parquet",
        5,
        "duplicate member_id 'm2' (first on row 2)",
    ),
]


@pytest.mark.parametrize(
    ("change", "fmt", "file", "line", "problem"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_validation_error_names_file_line_and_problem(
    tmp_path: Path, change: Callable[[Tables], None], fmt: str, file: str, line: int, problem: str
) -> None:
    tables = tiny_tables()
    change(tables)
    write_tables(tables, tmp_path, fmt=fmt)  # type: ignore[arg-type]
    with pytest.raises(DataValidationError) as caught:
        load_network(tmp_path, sensitive_attributes=["gender"])
    err = caught.value
    unit = "row" if fmt == "parquet" else "line"
    assert str(err).startswith(f"{file}, {unit} {line}: "), str(err)
    assert problem in str(err)
    assert (err.path, err.line) == (file, line)
    assert problem in err.problem


@pytest.mark.parametrize(
    ("table", "file", "problem"),
    [
        ("members", "members.csv", "no members"),
        ("connections", "connections.csv", "no connections"),
    ],
)
def test_empty_table_is_an_error(tmp_path: Path, table: str, file: str, problem: str) -> None:
    tables = tiny_tables()
    _empty(table)(tables)
    write_tables(tables, tmp_path, fmt="csv")
    with pytest.raises(DataValidationError, match=problem) as caught:
        load_network(tmp_path)
    assert caught.value.path == file and caught.value.line is None


def test_empty_interests_are_allowed(tmp_path: Path) -> None:
    tables = tiny_tables()
    _empty("interests")(tables)
    write_tables(tables, tmp_path, fmt="csv")
    net = load_network(tmp_path)
    assert net.n_interests == 0 and net.member_interests.shape == (6, 0)


def test_missing_sensitive_attribute_is_named(tmp_path: Path) -> None:
    write_tables(tiny_tables(), tmp_path, fmt="csv")
    with pytest.raises(DataValidationError) as caught:
        load_network(tmp_path, sensitive_attributes=["gender", "age_band"])
    assert str(caught.value).startswith("members.csv, line 1: sensitive attribute 'age_band'")
    assert "member_id, gender, region" in str(caught.value)


def test_frames_use_source_names_in_messages() -> None:
    tables = tiny_tables()
    _set("connections", "member_a", 0, "m0")(tables)
    with pytest.raises(DataValidationError) as caught:
        network_from_frames(tables["members"], tables["interests"], tables["connections"])
    assert str(caught.value) == "connections, line 2: member 'm0' is not in members"
    with pytest.raises(DataValidationError) as caught:
        network_from_frames(
            tables["members"],
            tables["interests"],
            tables["connections"],
            sources={"members": "people.parquet", "connections": "edges.parquet"},
        )
    assert str(caught.value) == "edges.parquet, row 1: member 'm0' is not in people.parquet"


def test_error_survives_pickling() -> None:
    err = DataValidationError("empty member_id", path="members.csv", line=4)
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.line, again.problem, str(again)) == (
        err.path,
        4,
        err.problem,
        str(err),
    )
