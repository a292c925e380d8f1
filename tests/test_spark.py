"""The Spark engine against the local one: same slates, same metrics, ALS embeddings that rank.

One ``local[2]`` session serves the whole module; the small fitted model of ``conftest`` is
saved once and ranked by both engines. The assignment runs as Spark rounds until fewer than
``FINISH_BELOW`` list entries are left (the session's ``spark.plusone.assign.finishBelow``), so
that the tests see both the distributed rounds and the last rounds in one task.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cli import main
from training.config import Config, ConfigError

pytest.importorskip("pyspark", reason="the Spark engine needs pip install 'plusone[spark]'")

#: Small enough that every equality test runs several assignment rounds on Spark.
FINISH_BELOW = 2000

LOCAL_METRICS = (
    "coverage",
    "bridge_rate",
    "exposure_gini",
    "exposure_atkinson",
    "max_inbound_share",
    "plus_one_balance",
    "plus_one_balance_pledged",
    "mean_slate_size",
)


@pytest.fixture(scope="module")
def spark():
    from training.spark import SparkUnavailableError, check_java, spark_session

    try:
        check_java()
    except SparkUnavailableError as err:
        pytest.skip(str(err))
    conf = {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "1g",
        "spark.sql.adaptive.enabled": "false",
        "spark.plusone.assign.finishBelow": str(FINISH_BELOW),
    }
    with spark_session("local[2]", app_name="plusone-tests", conf=conf) as session:
        session.sparkContext.setLogLevel("ERROR")
        yield session


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """The conftest model saved with a config that names its data (synthetic 1500, seed 11)."""
    from recsys import save_model

    model, train, _ = fitted
    root = tmp_path_factory.mktemp("spark")
    config = Config.from_dict(
        {"synthetic": {"members": 1500, "seed": 11}, "evaluation": {"k": 10}}
    )
    path = save_model(model, root / "model", config=config.to_dict())
    return model, train, path


def _local_metrics(model, train, rows, ids, scores, *, sensitive=None, k=10):
    from recsys import Slates, evaluate_slates

    network = (
        train if sensitive is None else replace(train, sensitive=sensitive.reset_index(drop=True))
    )
    metrics, tables = evaluate_slates(
        Slates(rows, ids, scores),
        train=network,
        heldout=np.empty((0, 2), dtype=np.int32),
        communities=model.communities_,
        k=k,
        min_group_size=20,
        atkinson_epsilon=0.5,
        plus_one_rows=model.reranker_.required_rows(np.arange(train.n_members)),
        include_baseline=False,
    )
    return metrics, tables


def test_spark_batch_file_equals_local_and_logs_equal_metrics(saved, spark, tmp_path, capsys):
    model, train, path = saved
    common = ["rank", "--model", str(path), "--members", "all", "--k", "10"]
    assert main([*common, "--output", str(tmp_path / "local.parquet")]) == 0
    assert (
        main(
            [
                *common,
                "--output",
                str(tmp_path / "spark.parquet"),
                "--engine",
                "spark",
                "--spark-master",
                "local[2]",
                "--metrics",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ranked on Spark" in out and "exposure_gini" in out

    local = pd.read_parquet(tmp_path / "local.parquet")
    # the executors wrote a directory of Parquet parts; read in name order it is the local file
    parts = sorted(p.name for p in (tmp_path / "spark.parquet").glob("part-*.parquet"))
    assert (tmp_path / "spark.parquet").is_dir() and parts
    distributed = pd.read_parquet(tmp_path / "spark.parquet")
    assert list(distributed.columns) == ["member_id", "rank", "other_id", "score"]
    assert len(local) > 10 * train.n_members * 0.9  # nearly every slate is full
    pd.testing.assert_frame_equal(distributed.drop(columns="score"), local.drop(columns="score"))
    np.testing.assert_allclose(distributed["score"], local["score"], rtol=1e-6)

    # the run: the same figures as the local metric functions on the same slates
    import mlflow

    from training.data import load_data

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("plusone").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["engine"] == "spark" and run.data.params["batch.k"] == "10"
    rows = np.arange(train.n_members)
    ids = np.full((train.n_members, 10), -1, dtype=np.int32)
    scores = np.full((train.n_members, 10), -np.inf, dtype=np.float32)
    at = (train.rows_of(local["member_id"]), local["rank"].to_numpy() - 1)
    ids[at], scores[at] = (
        train.rows_of(local["other_id"]),
        local["score"].to_numpy(),
    )  # the local slates
    full = load_data(
        Config.from_dict({"synthetic": {"members": 1500, "seed": 11}})
    )  # what the saved config names
    sensitive = full.sensitive.iloc[full.rows_of(train.member_ids)]
    expected, _ = _local_metrics(model, train, rows, ids, scores, sensitive=sensitive)
    for name in (*LOCAL_METRICS, "equity/gender/exposure_ratio"):
        assert np.isfinite(expected[name]), name
        assert run.data.metrics[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    assert run.data.metrics["batch/members"] == train.n_members
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "groups")}
    assert "groups/equity__gender__exposure.csv" in artifacts


def test_blocks_ranked_in_separate_partitions_equal_rank_batch(saved, spark):
    """Several blocks over both workers, non-contiguous members: the assignment on Spark still
    gives exactly the local slates (capacity is shared by every partition's members)."""
    from training.spark import rank_on_spark

    model, train, path = saved
    rows = np.sort(np.random.default_rng(5).choice(train.n_members, 700, replace=False))
    ids, scores = rank_on_spark(spark, path, rows, k=8, batch_size=120)
    want_ids, want_scores = model.rank_batch(rows, 8, batch_size=120)
    assert ids.shape == (700, 8) and ids.dtype == np.int32 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    capacity = model.slate_capacity(model.network_, n_slates=len(rows), k=8)
    assert (np.bincount(ids[ids >= 0], minlength=train.n_members) <= capacity).all()


def test_contention_plus_one_and_least_exposed_places_equal_the_local_assignment(
    saved, spark, tmp_path
):
    """A setting where capacity binds (a multiple of 0.6), every member keeps the +1 balance
    and 3 of 8 places go to the least exposed: still the local slates, place for place."""
    from recsys import save_model
    from training.spark import rank_on_spark

    model, train, _ = saved
    tight = model.with_setting(plus_one="all", capacity_multiple=0.6, floor_slots=6, floor_depth=3)
    path = save_model(tight, tmp_path / "tight")
    rows = np.arange(0, train.n_members, 2)
    ids, scores = rank_on_spark(spark, path, rows, k=8, batch_size=250)
    want_ids, want_scores = tight.rank_batch(rows, 8, batch_size=250)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    assert tight.floor_places(8)[0] > 0
    capacity = tight.slate_capacity(tight.network_, n_slates=len(rows), k=8)
    shown = np.bincount(ids[ids >= 0], minlength=train.n_members)
    assert (shown <= capacity).all() and (shown == capacity).sum() > 20  # capacity binds


def _lists_frame(spark, ids, scores, outside, required, k):
    import pyarrow as pa

    from recsys import plus_one_quota
    from training.spark._arrow import list_array

    empty = ids < 0
    length = np.where(empty.any(axis=1), empty.argmax(axis=1), ids.shape[1])
    return spark.createDataFrame(
        pa.table(
            {
                "position": np.arange(len(ids), dtype=np.int64),
                "ids": list_array(ids),
                "scores": list_array(scores),
                "outside": list_array(outside),
                "required": required,
                "max_inside": plus_one_quota(ids, outside, required, k).astype(np.int32),
                "length": length.astype(np.int32),
            }
        )
    ).cache()


@pytest.mark.parametrize(("floor_slots", "finish_below"), [(0, 0), (1, 150)])
def test_assignment_rounds_break_ties_to_the_lower_row_as_the_kernel_does(
    spark, floor_slots, finish_below
):
    """Hand-made lists with many tied scores, popular candidates (capacity binds), +1 quotas
    and lists of unequal length: the rounds on Spark (all of them, or the first ones and the
    rest in one task) equal :func:`recsys.assign_slates`."""
    import functools

    from recsys import PreferenceLists, assign_slates
    from training.spark import assign_on_spark

    rng = np.random.default_rng(floor_slots)
    n, rows, k, width = 60, 120, 3, 7
    popular = np.sort(rng.zipf(1.5, n).astype(float))[::-1]
    ids = np.full((rows, width), -1, dtype=np.int32)
    scores = np.full((rows, width), -np.inf, dtype=np.float32)
    for r in range(rows):
        length = rng.integers(2, width + 1)
        ids[r, :length] = rng.choice(n, length, replace=False, p=popular / popular.sum())
        scores[r, :length] = np.sort(rng.integers(0, 4, length) / 4)[::-1]  # many ties
    outside = rng.random((rows, width)) < 0.4
    required = rng.random(rows) < 0.6
    want_ids, want_scores = assign_slates(
        PreferenceLists(ids, scores, outside),
        k=k,
        capacity=np.full(n, 4),
        required=required,
        floor_slots=floor_slots,
    )
    frame = _lists_frame(spark, ids, scores, outside, required, k)
    slates, report = assign_on_spark(
        spark,
        frame,
        n_members=n,
        capacity=functools.partial(np.full, n, 4),  # called on the executors
        k=k,
        floor_slots=floor_slots,
        finish_below=finish_below,
    )
    got = slates.toPandas()
    got_ids = np.full((rows, k), -1, dtype=np.int32)
    got_scores = np.full((rows, k), -np.inf, dtype=np.float32)
    got_ids[got["position"], got["slot"]] = got["other"]
    got_scores[got["position"], got["slot"]] = got["score"]
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6)
    assert report.spark_rounds >= 2
    assert (report.finished_rows > 0) == bool(finish_below)
    assert (np.bincount(want_ids[want_ids >= 0], minlength=n) == 4).sum() >= 5  # binding


def test_a_model_changed_or_corrupt_on_shared_storage_is_refused(saved, spark, tmp_path):
    """Each node verifies its copy as it makes it: a tampered file is refused by the executor
    with the library's message (not a Spark trace), and so is a manifest that changed after
    the driver read it."""
    import shutil

    from recsys import ModelFormatError
    from training.spark import manifest_sha, node_model_dir, rank_on_spark

    _, _, path = saved
    bad = tmp_path / "bad"
    shutil.copytree(path.resolve(), bad)
    np.save(bad / "member_factors.npy", np.load(bad / "member_factors.npy") * 2)
    # another manifest (its SHA-256 names the node's copy), still listing the old checksums
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["metadata"] = {"copy": "tampered"}
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="checksum mismatch for member_factors.npy"):
        rank_on_spark(spark, bad, np.arange(5), k=3)
    moved = tmp_path / "moved"
    shutil.copytree(path.resolve(), moved)
    (moved / "manifest.json").write_text((moved / "manifest.json").read_text() + " ")
    with pytest.raises(ModelFormatError, match="changed after the driver read it"):
        node_model_dir(moved, manifest_sha(path))
    copy = node_model_dir(path, manifest_sha(path))  # the node's copy: verified, private
    assert (copy / "manifest.json").read_bytes() == (path / "manifest.json").read_bytes()
    assert copy.parent.stat().st_mode & 0o077 == 0


def test_without_reranking_spark_ranks_with_rank(saved, spark, tmp_path):
    from recsys import load_model, save_model
    from training.spark import rank_on_spark

    _, train, path = saved
    plain = load_model(path)
    plain.set_params(rerank=False)
    plain_dir = save_model(plain, tmp_path / "plain")
    plain = load_model(plain_dir)
    rows = np.arange(0, train.n_members, 3)
    ids, scores = rank_on_spark(spark, plain_dir, rows, k=6, batch_size=200)
    want_ids, want_scores = plain.rank_batch(rows, 6, batch_size=200)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    assert (np.diff(np.where(ids >= 0, scores, -np.inf), axis=1) <= 0).all()  # sorted best first


def test_metrics_on_spark_equal_local_with_suppression_and_empty_slates(saved, spark):
    from training.batch import slates_frame
    from training.spark import (
        member_attributes_on_spark,
        model_members_on_spark,
        neighbours_on_spark,
        slate_metrics_on_spark,
    )

    model, train, _ = saved
    rows = np.arange(0, train.n_members, 2)
    ids, scores = model.rank_batch(rows, 10)
    ids[3] = -1  # a ranked member whose slate came out empty still counts as a slate
    scores[3] = -np.inf
    table = train.sensitive.copy()
    table["cohort"] = np.where(
        np.arange(train.n_members) < 12,
        "tiny",
        np.where(np.arange(train.n_members) % 3 == 0, "x", "y"),
    )
    table.insert(0, "member_id", train.member_ids.astype(str))
    expected, expected_tables = _local_metrics(
        model, train, rows, ids, scores, sensitive=table.drop(columns="member_id")
    )

    attrs = member_attributes_on_spark(spark, table, ["gender", "cohort"])
    members = model_members_on_spark(spark, model, attrs)
    slates = spark.createDataFrame(slates_frame(model, rows, ids, scores))
    ranked = spark.createDataFrame(pd.DataFrame({"member_id": train.member_ids[rows].astype(str)}))
    got, tables = slate_metrics_on_spark(
        slates,
        members,
        neighbours=neighbours_on_spark(spark, train.adjacency),
        ranked=ranked,
        sensitive_attributes=["gender", "cohort"],
        min_group_size=20,
        atkinson_epsilon=0.5,
    )
    for name in (*LOCAL_METRICS, "equity/gender/exposure_ratio", "equity/cohort/exposure_ratio"):
        assert np.isfinite(expected[name]), name
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    cohort = tables["equity/cohort/exposure"].set_index("group")
    assert (
        bool(cohort.loc["tiny", "suppressed"])
        and pd.isna(cohort.loc["tiny", "members"])
        and np.isnan(cohort.loc["tiny", "ratio"])
    )
    pd.testing.assert_frame_equal(
        tables["equity/cohort/exposure"],
        expected_tables["equity/cohort/exposure"],
        check_dtype=False,
    )
    pd.testing.assert_frame_equal(
        tables["equity/gender/exposure"],
        expected_tables["equity/gender/exposure"],
        check_dtype=False,
    )


def test_member_labels_from_csv_follow_the_local_loader(spark, tmp_path):
    from recsys import load_network
    from training.spark import member_attributes_on_spark

    (tmp_path / "members.csv").write_text("member_id,gender\nm1,a\nm2,\nm3,NA\nm4, \nm5,b\n")
    (tmp_path / "interests.csv").write_text("member_id,interest\nm1,x\n")
    (tmp_path / "connections.csv").write_text("member_a,member_b\nm1,m2\n")
    local = load_network(tmp_path, sensitive_attributes=["gender"])
    got = member_attributes_on_spark(spark, tmp_path, ["gender"]).toPandas().set_index("member_id")
    want = pd.Series(local.sensitive["gender"].to_numpy(), index=local.member_ids.astype(str))
    assert (
        got.loc[want.index, "gender"].tolist()
        == want.tolist()
        == ["a", "undisclosed", "undisclosed", "undisclosed", "b"]
    )
    with pytest.raises(ValueError, match="no column 'region'"):
        member_attributes_on_spark(spark, tmp_path, ["region"])


def test_spark_als_embeddings_fit_a_model_that_ranks(spark):
    from recsys import synthetic_network
    from training.factory import fit_recommender
    from training.spark import als_factors_on_spark

    net = synthetic_network(400, seed=5)
    config = Config.from_dict(
        {
            "candidates": {
                "pool_size": 40,
                "als": {"engine": "spark", "factors": 8, "iterations": 5, "seed": 3},
            },
            "scoring": {"max_training_members": 200},
            "rerank": {"enabled": False},
        }
    )
    model = fit_recommender(config, net)
    again = als_factors_on_spark(
        spark,
        net.member_interests,
        factors=8,
        iterations=5,
        regularization=0.05,
        alpha=2.0,
        seed=3,
    )
    np.testing.assert_array_equal(
        model.member_factors_, again
    )  # the model holds MLlib's vectors; seeded, so repeatable
    assert again.shape == (400, 8) and again.dtype == np.float32
    has = np.diff(net.member_interests.indptr) > 0
    np.testing.assert_allclose(np.linalg.norm(again[has], axis=1), 1.0, rtol=1e-5)
    # the planted communities share interest pools: embeddings are closer within them
    planted = net.attributes["planted_community"].to_numpy()
    sims = again @ again.T
    same = planted[:, None] == planted[None, :]
    off = ~np.eye(400, dtype=bool)
    assert sims[same & off].mean() > sims[~same].mean() + 0.2
    ids, scores = model.rank(np.arange(20), k=5)
    assert (ids >= 0).all() and (ids != np.arange(20)[:, None]).all()


def test_spark_errors_are_clear(monkeypatch, tmp_path, capsys):
    from training.spark import SparkUnavailableError, check_java, require_pyspark

    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    with pytest.raises(
        SparkUnavailableError, match=r"Java 17 or newer and found no java on JAVA_HOME="
    ):
        check_java()
    old = tmp_path / "jdk11" / "bin"
    old.mkdir(parents=True)
    (old / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    (old / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk11"))
    with pytest.raises(SparkUnavailableError, match="is Java 11"):
        check_java()
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(SparkUnavailableError, match=r"pip install 'plusone\[spark\]'"):
        require_pyspark()
    assert (
        main(
            [
                "rank",
                "--model",
                str(tmp_path),
                "--members",
                "all",
                "--output",
                "x.parquet",
                "--engine",
                "spark",
            ]
        )
        == 2
    )
    assert "pip install 'plusone[spark]'" in capsys.readouterr().err
    assert main(["rank", "--model", str(tmp_path), "--member", "m1", "--engine", "spark"]) == 2
    assert "--engine spark ranks many members" in capsys.readouterr().err
    assert (
        main(
            [
                "rank",
                "--model",
                str(tmp_path),
                "--members",
                "all",
                "--output",
                "x.parquet",
                "--metrics",
            ]
        )
        == 2
    )
    assert "--metrics goes with --engine spark" in capsys.readouterr().err


def test_als_engine_is_a_checked_config_key():
    assert Config().candidates.als.engine == "implicit"
    assert (
        Config.from_dict({"candidates": {"als": {"engine": "spark"}}}).candidates.als.engine
        == "spark"
    )
    with pytest.raises(ConfigError, match="candidates.als.engine"):
        Config.from_dict({"candidates": {"als": {"engine": "dask"}}})
