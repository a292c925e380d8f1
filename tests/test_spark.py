"""The Spark engine against the local one: same slates, same metrics, ALS embeddings that rank.

One ``local[2]`` session serves the whole module; the small fitted model of ``conftest`` is
saved once and ranked by both engines.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cli import main
from training.config import Config, ConfigError

pytest.importorskip("pyspark", reason="the Spark engine needs pip install 'plusone[spark]'")

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
    """Several blocks over both workers, non-contiguous members: the global assignment still
    gives exactly the local slates (capacity is shared by every partition's members)."""
    from training.spark import rank_on_spark

    model, train, path = saved
    rows = np.sort(np.random.default_rng(5).choice(train.n_members, 700, replace=False))
    ids, scores = rank_on_spark(spark, model, path, rows, k=8, batch_size=120)
    want_ids, want_scores = model.rank_batch(rows, 8, batch_size=120)
    assert ids.shape == (700, 8) and ids.dtype == np.int32 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    # the assignment did bind: a per-partition assignment could not have known the others' load
    capacity = model.slate_capacity(model.network_, n_slates=len(rows), k=8)
    assert (np.bincount(ids[ids >= 0], minlength=train.n_members) <= capacity).all()


def test_without_reranking_spark_ranks_with_rank(saved, spark, tmp_path):
    from recsys import load_model, save_model
    from training.spark import rank_on_spark

    _, train, path = saved
    plain = load_model(path)
    plain.set_params(rerank=False)
    plain_dir = save_model(plain, tmp_path / "plain")
    plain = load_model(plain_dir)
    rows = np.arange(0, train.n_members, 3)
    ids, scores = rank_on_spark(spark, plain, plain_dir, rows, k=6, batch_size=200)
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
