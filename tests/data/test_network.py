"""Tests for building a Network from tables and for its accessors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataValidationError, Network, network_from_frames

from .tiny import check_tiny, tiny_tables

# --------------------------------------------------------------------------------------------
# building from tables
# --------------------------------------------------------------------------------------------


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
