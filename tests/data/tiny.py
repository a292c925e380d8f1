"""Six members, one called "NA", and the answers for them worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data import Network


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
