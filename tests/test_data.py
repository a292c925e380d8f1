"""Tests for recsys.data: loading, validating and indexing the input layout."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import (
    DataValidationError,
    Network,
    load_network,
    network_from_frames,
    read_table,
    write_tables,
)

DEEZER = Path("/work/shared/datasets/deezer_europe")
FORMATS = ["csv", "csv.gz", "parquet"]


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Six members (one called "NA"), with answers worked out by hand below."""
    members = pd.DataFrame(
        {
            "member_id": ["m1", "m2", "m3", "NA", "m5", "m6"],
            "gender": ["f", "m", "", "f", "x", ""],
            "region": ["north", "south", "north", "", "east", "east"],
            "open_to_intros": ["yes", "no", "", "TRUE", "0", "false"],
            "capacity": [3.0, np.nan, 1.0, 2.0, 5.0, 4.0],
        }
    )
    interests = pd.DataFrame(
        {
            "member_id": ["m1", "m1", "m2", "NA", "m5", "m1"],
            "interest": ["jazz", "hiking", "jazz", "jazz", "chess", "jazz"],
            "weight": [1.0, 0.5, 2.0, 1.0, 1.5, 2.0],  # (m1, jazz) twice: 1 + 2 = 3
        }
    )
    connections = pd.DataFrame(
        {
            "member_a": ["m1", "m2", "m3", "NA", "m5", "m2"],
            "member_b": ["m2", "m3", "NA", "m1", "m6", "m1"],  # m2-m1 repeats m1-m2
            "created_at": [
                "1600000000",
                "2020-09-13T12:26:40Z",  # = 1600000000
                "",
                "1500000000.5",
                "2021-01-01",
                "1400000000",  # earlier than the m1-m2 row: the merged pair keeps it
            ],
        }
    )
    introductions = pd.DataFrame(
        {
            "member_a": ["m1", "m3"],
            "member_b": ["m5", "m6"],
            "accepted": [1, 0],
            "created_at": ["1600000000", ""],
            "broker": ["m2", ""],
        }
    )
    return {
        "members": members,
        "interests": interests,
        "connections": connections,
        "introductions": introductions,
    }


def check_tiny(net: Network) -> None:
    """The answers for tiny_tables(), loaded with sensitive_attributes=["gender"]."""
    assert net.member_ids.dtype == object
    assert net.member_ids.tolist() == ["m1", "m2", "m3", "NA", "m5", "m6"]
    assert net.n_members == 6

    # connections: rows m1=0 m2=1 m3=2 NA=3 m5=4 m6=5
    assert net.connections.dtype == np.int32
    assert net.connections.tolist() == [[0, 1], [0, 3], [1, 2], [2, 3], [4, 5]]
    expected_times = [
        1.4e9,
        1.5e9 + 0.5,
        1.6e9,
        np.nan,
        pd.Timestamp("2021-01-01", tz="UTC").timestamp(),
    ]
    np.testing.assert_allclose(net.connection_times, expected_times)
    adjacency = net.adjacency
    assert adjacency.dtype == np.float32
    assert adjacency.has_canonical_format and adjacency.has_sorted_indices
    dense = adjacency.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    assert dense.diagonal().sum() == 0
    assert dense.sum() == 2 * 5  # six rows, one repeated pair
    assert net.degrees.dtype == np.int32
    assert net.degrees.tolist() == [2, 2, 2, 2, 1, 1]

    # interests: sorted names, (m1, jazz) summed
    assert net.interest_names.tolist() == ["chess", "hiking", "jazz"]
    assert net.n_interests == 3
    assert net.member_interests.dtype == np.float32
    assert net.member_interests.has_sorted_indices
    expected = np.zeros((6, 3), dtype=np.float32)
    expected[0] = [0, 0.5, 3.0]
    expected[1, 2] = 2.0
    expected[3, 2] = 1.0
    expected[4, 0] = 1.5
    np.testing.assert_array_equal(net.member_interests.toarray(), expected)

    # sensitive columns are split off, missing -> undisclosed
    assert list(net.sensitive.columns) == ["gender"]
    assert net.sensitive["gender"].tolist() == ["f", "m", "undisclosed", "f", "x", "undisclosed"]
    assert list(net.attributes.columns) == ["region", "open_to_intros", "capacity"]
    assert isinstance(net.attributes.index, pd.RangeIndex)
    assert net.attributes["region"].isna().tolist() == [False, False, False, True, False, False]

    # ids
    assert net.rows_of(["NA", "m6", "nobody", "m1"]).tolist() == [3, 5, -1, 0]
    assert net.rows_of("m2").tolist() == [1]
    assert net.rows_of([]).shape == (0,)
    assert net.rows_of(np.array(["m5"], dtype=object)).dtype == np.int32

    # introductions
    intro = net.introductions
    assert intro is not None
    assert intro["member_a"].tolist() == [0, 2]
    assert intro["member_b"].tolist() == [4, 5]
    assert intro["accepted"].dtype == np.int8 and intro["accepted"].tolist() == [1, 0]
    assert intro["broker"].dtype == np.int32 and intro["broker"].tolist() == [1, -1]
    np.testing.assert_allclose(intro["created_at"], [1.6e9, np.nan])


@pytest.mark.parametrize("fmt", FORMATS)
def test_tiny_network_loads_the_same_from_every_format(tmp_path: Path, fmt: str) -> None:
    write_tables(tiny_tables(), tmp_path, fmt=fmt)  # type: ignore[arg-type]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{t}.{fmt}" for t in tiny_tables())
    net = load_network(tmp_path, sensitive_attributes=["gender"])
    check_tiny(net)


def test_tiny_network_from_frames() -> None:
    tables = tiny_tables()
    net = network_from_frames(
        tables["members"],
        tables["interests"],
        tables["connections"],
        introductions=tables["introductions"],
        sensitive_attributes=["gender"],
    )
    check_tiny(net)
    assert "n_members=6" in repr(net)


def test_csv_and_parquet_give_equal_attributes(tmp_path: Path) -> None:
    loaded = {}
    for fmt in ("csv", "parquet"):
        write_tables(tiny_tables(), tmp_path / fmt, fmt=fmt)  # type: ignore[arg-type]
        loaded[fmt] = load_network(tmp_path / fmt, sensitive_attributes=["gender"])
    pd.testing.assert_frame_equal(loaded["csv"].attributes, loaded["parquet"].attributes)
    pd.testing.assert_frame_equal(loaded["csv"].sensitive, loaded["parquet"].sensitive)


def test_read_table_keeps_ids_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_text("member_id,capacity,region\n007,1,NA\nNA,,north\n", encoding="utf-8")
    frame = read_table(path)
    assert frame["member_id"].tolist() == ["007", "NA"]
    assert frame["capacity"].isna().tolist() == [False, True]
    assert frame["capacity"].dtype == np.float64
    assert frame["region"].isna().tolist() == [True, False]


def test_integer_ids_and_no_interests() -> None:
    net = network_from_frames(
        pd.DataFrame({"member_id": [10, 20, 30]}),
        pd.DataFrame(
            {"member_id": pd.Series([], dtype=str), "interest": pd.Series([], dtype=str)}
        ),
        pd.DataFrame({"member_a": [10, 30], "member_b": [20, 20]}),
    )
    assert net.member_ids.tolist() == ["10", "20", "30"]
    assert net.n_interests == 0 and net.member_interests.shape == (3, 0)
    assert net.connection_times is None
    assert net.introductions is None
    assert net.sensitive.shape == (3, 0)
    assert net.rows_of([30, 99]).tolist() == [2, -1]


# --------------------------------------------------------------------------------------------
# validation: each error names the file, the exact line and the problem
# --------------------------------------------------------------------------------------------

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


def test_directory_level_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataValidationError, match="data directory does not exist") as caught:
        load_network(missing)
    assert caught.value.path == str(missing)

    tables = tiny_tables()
    del tables["connections"]
    write_tables(tables, tmp_path / "a", fmt="csv")
    with pytest.raises(DataValidationError) as caught:
        load_network(tmp_path / "a")
    assert (
        "no connections table (looked for connections.csv, connections.csv.gz, "
        "connections.parquet)" in str(caught.value)
    )

    write_tables(tiny_tables(), tmp_path / "b", fmt="csv")
    tiny_tables()["members"].to_parquet(tmp_path / "b" / "members.parquet")
    with pytest.raises(
        DataValidationError, match=r"more than one members table \(members.csv, members.parquet\)"
    ):
        load_network(tmp_path / "b")


def test_malformed_csv_row_is_located(tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_text("member_id,gender\nm1,f\nm2,m,extra\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as caught:
        read_table(tmp_path / "members.csv")
    assert str(caught.value).startswith("members.csv, line 3: expected 2 columns, got 3")


def test_datetime_columns_and_empty_introductions() -> None:
    tables = tiny_tables()
    stamps = pd.to_datetime(
        ["2020-01-01", "2020-01-02", None, "2020-01-03", "2020-01-04", "2019-12-31"]
    )
    tables["connections"]["created_at"] = stamps
    net = network_from_frames(
        tables["members"],
        tables["interests"],
        tables["connections"],
        introductions=tables["introductions"].iloc[:0],
    )
    day = 86_400.0
    jan1 = pd.Timestamp("2020-01-01", tz="UTC").timestamp()
    # pairs: (m1, m2) from rows 0 and 5 keeps the earlier, 2019-12-31
    np.testing.assert_allclose(
        net.connection_times, [jan1 - day, jan1 + 2 * day, jan1 + day, np.nan, jan1 + 3 * day]
    )
    assert net.introductions is not None and len(net.introductions) == 0
    assert list(net.introductions.columns) == [
        "member_a",
        "member_b",
        "accepted",
        "created_at",
        "broker",
    ]


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


def test_write_tables_replaces_other_formats_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_tables(tiny_tables(), tmp_path, fmt="csv")
    write_tables({"members": tiny_tables()["members"]}, tmp_path, fmt="parquet")
    names = sorted(os.listdir(tmp_path))
    assert "members.parquet" in names and "members.csv" not in names
    assert not [n for n in names if n.startswith(".")]
    load_network(tmp_path)  # still exactly one file per table


# --------------------------------------------------------------------------------------------
# Network methods
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny() -> Network:
    tables = tiny_tables()
    return network_from_frames(
        tables["members"],
        tables["interests"],
        tables["connections"],
        sensitive_attributes=["gender"],
    )


def test_with_connections_rebuilds_the_edge_set(tiny: Network) -> None:
    new = tiny.with_connections(
        np.array([[5, 0], [0, 5], [2, 1], [3, 4]]),
        connection_times=np.array([9.0, 7.0, np.nan, 1.0]),
    )
    assert new.connections.tolist() == [[0, 5], [1, 2], [3, 4]]
    np.testing.assert_array_equal(new.connection_times, [7.0, np.nan, 1.0])
    dense = new.adjacency.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    assert dense.sum() == 6 and new.adjacency.has_canonical_format
    assert new.degrees.tolist() == [1, 1, 1, 1, 1, 1]
    # members, interests and attributes are shared, not copied
    assert new.member_interests is tiny.member_interests
    assert new.attributes is tiny.attributes and new.sensitive is tiny.sensitive
    assert new.rows_of(["m6"]).tolist() == [5]
    # the original is untouched
    assert tiny.connections.shape == (5, 2)

    without_times = tiny.with_connections(tiny.connections[:2])
    assert without_times.connection_times is None
    assert without_times.adjacency.nnz == 4

    empty = tiny.with_connections(np.zeros((0, 2), dtype=np.int32))
    assert empty.adjacency.nnz == 0 and empty.connections.shape == (0, 2)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        (np.array([[0, 6]]), "must lie in"),
        (np.array([[-1, 2]]), "must lie in"),
        (np.array([[2, 2]]), "self-connection"),
        (np.array([0, 1]), "shape"),
        (np.array([[0.5, 1.0]]), "integer"),
    ],
)
def test_with_connections_rejects_bad_edges(
    tiny: Network, edges: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tiny.with_connections(edges)


def test_bool_attribute_parsing(tiny: Network) -> None:
    # "yes", "no", "", "TRUE", "0", "false"
    assert tiny.bool_attribute("open_to_intros", default=True).tolist() == [
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert tiny.bool_attribute("open_to_intros", default=False).tolist() == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert tiny.bool_attribute("plus_one", default=False).tolist() == [False] * 6
    assert tiny.bool_attribute("plus_one", default=True).dtype == bool


def test_bool_attribute_numeric_and_boolean_columns() -> None:
    members = pd.DataFrame(
        {
            "member_id": ["a", "b", "c"],
            "plus_one": [1.0, 0.0, np.nan],
            "flag": pd.array([True, None, False], dtype="boolean"),
            "bad": ["yes", "no", "perhaps"],
        }
    )
    net = network_from_frames(
        members,
        pd.DataFrame({"member_id": ["a"], "interest": ["x"]}),
        pd.DataFrame({"member_a": ["a"], "member_b": ["b"]}),
        sources={"members": "members.csv"},
    )
    assert net.bool_attribute("plus_one", default=True).tolist() == [True, False, True]
    assert net.bool_attribute("flag", default=True).tolist() == [True, True, False]
    with pytest.raises(DataValidationError) as caught:
        net.bool_attribute("bad", default=False)
    assert str(caught.value).startswith("members.csv, line 4: bad must be")


def test_numeric_attribute(tiny: Network) -> None:
    np.testing.assert_array_equal(
        tiny.numeric_attribute("capacity"), [3.0, np.nan, 1.0, 2.0, 5.0, 4.0]
    )
    assert tiny.numeric_attribute("capacity").dtype == np.float64
    assert tiny.numeric_attribute("pledge_per_month") is None
    with pytest.raises(DataValidationError, match="line 2: region must be a number"):
        tiny.numeric_attribute("region")


# --------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_deezer_europe_matches_its_source_card() -> None:
    if not DEEZER.is_dir():
        pytest.skip(f"{DEEZER} is not present")
    net = load_network(DEEZER, sensitive_attributes=["gender"])
    # figures from SOURCE.md
    assert net.n_members == 28_281
    assert len(net.connections) == 92_752
    assert net.adjacency.nnz == 2 * 92_752
    assert net.n_interests == 30_978
    assert net.member_interests.nnz == 958_475
    assert int((np.diff(net.member_interests.indptr) == 0).sum()) == 6_159
    assert net.sensitive["gender"].value_counts().to_dict() == {"g0": 15_743, "g1": 12_538}
    degrees = net.degrees
    assert (degrees.min(), int(np.median(degrees)), degrees.max()) == (1, 4, 172)
    assert round(float(degrees.mean()), 1) == 6.6
    assert net.attributes.shape == (28_281, 0)
    assert net.connection_times is None
    assert net.rows_of(["m0", "m28280"]).tolist() == [0, 28_280]
