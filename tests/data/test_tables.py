"""Tests for the files of recsys.data: reading, finding, loading and writing tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataValidationError, load_network, read_table, write_tables

from .tiny import check_tiny, tiny_tables

DEEZER = Path("/work/shared/datasets/deezer_europe")
FORMATS = ["csv", "csv.gz", "parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_tiny_network_loads_the_same_from_every_format(tmp_path: Path, fmt: str) -> None:
    write_tables(tiny_tables(), tmp_path, fmt=fmt)  # type: ignore[arg-type]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{t}.{fmt}" for t in tiny_tables())
    net = load_network(tmp_path, sensitive_attributes=["gender"])
    check_tiny(net)


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


def test_write_tables_replaces_other_formats_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_tables(tiny_tables(), tmp_path, fmt="csv")
    write_tables({"members": tiny_tables()["members"]}, tmp_path, fmt="parquet")
    names = sorted(os.listdir(tmp_path))
    assert "members.parquet" in names and "members.csv" not in names
    assert not [n for n in names if n.startswith(".")]
    load_network(tmp_path)  # still exactly one file per table


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
