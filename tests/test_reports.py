"""The run report: every metric, plots, per-group tables, per-member outcomes and the registered
model.
"""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from cli import main

K = 20
DESIGN_METRICS = [
    f"recall_at_{K}",
    f"ndcg_at_{K}",
    "coverage",
    "bridge_rate",
    "exposure_gini",
    "exposure_atkinson",
    "max_inbound_share",
    "plus_one_balance",
    "equity/gender/exposure_ratio",
    "equity/gender/recall_ratio",
    f"baseline/adamic_adar/recall_at_{K}",
]
EXTRA_METRICS = [
    "exposure_atkinson_ci_low",
    "exposure_atkinson_ci_high",
    "recall_atkinson",
    "recall_atkinson_ci_low",
    "recall_atkinson_ci_high",
    "recall_gini",
    "reach/mean_before",
    "reach/mean_after",
    "reach/mean_gain",
    "reach/share_gaining",
    "ndkl/gender",
    f"min_skew_at_{K}/gender",
    f"max_skew_at_{K}/gender",
    "community/exposure_ratio",
    "network_size/exposure_ratio",
]
TINY = [
    "--set",
    "synthetic.members=500",
    "--set",
    "candidates.als.iterations=3",
    "--set",
    "candidates.pool_size=60",
]


def shared_store(tmp_path_factory) -> str:
    """One SQLite store for this session's issue-5 tests (creating a store costs seconds of
    migrations).
    """
    return f"sqlite:///{tmp_path_factory.getbasetemp()}/issue5-mlflow.db"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    uri = shared_store(tmp_path_factory)
    code = main(
        [
            "train",
            "--output",
            str(root / "out"),
            *TINY,
            "--set",
            f"mlflow.tracking_uri={uri}",
            "--set",
            "mlflow.experiment=reports",
            "--set",
            "mlflow.alias=champion",
            "--set",
            "evaluation.bootstrap_samples=200",
        ]
    )
    assert code == 0
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("reports").experiment_id])
    return root, uri, client, found


def test_run_has_every_metric(run):
    root, _, _, found = run
    assert found.info.status == "FINISHED"
    for name in DESIGN_METRICS + EXTRA_METRICS:
        assert name in found.data.metrics, name
    metrics = found.data.metrics
    assert (
        metrics["exposure_atkinson_ci_low"]
        <= metrics["exposure_atkinson"]
        <= metrics["exposure_atkinson_ci_high"]
    )
    assert metrics["reach/mean_after"] >= metrics["reach/mean_before"]
    assert metrics["reach/mean_gain"] == pytest.approx(
        metrics["reach/mean_after"] - metrics["reach/mean_before"]
    )
    # the local metrics.json carries the same extras
    local = json.loads((root / "out" / "metrics.json").read_text())
    assert local["reach/mean_gain"] == pytest.approx(metrics["reach/mean_gain"])
    assert not any("@" in name for name in metrics)


def test_plots_tables_and_per_member_artifacts(run):
    root, _, client, found = run
    run_id = found.info.run_id
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"metrics.json", "config.yaml", "model", "plots", "groups", "per_member.parquet"} <= top
    plots = {a.path.split("/")[-1] for a in client.list_artifacts(run_id, "plots")}
    assert {
        "lorenz_introductions_received.png",
        "exposure_by_gender.png",
        "exposure_by_network_size.png",
        "exposure_by_community.png",
        "reach_by_network_size.png",
    } <= plots
    groups = {a.path.split("/")[-1] for a in client.list_artifacts(run_id, "groups")}
    assert {
        "community__exposure.csv",
        "network_size__recall.csv",
        "equity__gender__skew.csv",
        "reach__network_size.csv",
    } <= groups
    for png in (root / "out" / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_member = pd.read_parquet(root / "out" / "per_member.parquet")
    # anonymous rows: outcomes only, no member id, no sensitive value
    assert list(per_member.columns) == ["introductions_received", "heldout_recall", "reach_gain"]
    assert len(per_member) == 500 and isinstance(per_member.index, pd.RangeIndex)
    assert per_member["introductions_received"].sum() > 0


def test_model_is_registered_with_alias_and_predicts(run):
    root, uri, client, found = run
    version = client.get_model_version_by_alias("plusone", "champion")
    assert version.run_id == found.info.run_id
    import mlflow

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/plusone@champion")
    members = (
        pd.read_parquet(root / "out" / "model" / "members.parquet")["member_id"].head(3).tolist()
    )
    slates = model.predict(pd.DataFrame({"member_id": members, "k": [3, 3, 2]}))
    assert list(slates.columns) == ["member_id", "rank", "other_id", "score"]
    assert slates.groupby("member_id").size().max() <= 3
    assert (slates["member_id"] != slates["other_id"]).all()
    inputs = [c.name for c in model.metadata.get_input_schema().inputs]
    assert inputs == ["member_id", "k"]
    with pytest.raises(Exception, match="unknown member"):
        model.predict(pd.DataFrame({"member_id": ["nobody"], "k": [3]}))


def test_small_groups_are_never_reported(run):
    from recsys import Slates, load_model, rank_all, synthetic_network
    from training.reports import evaluation_extras

    root = run[0]
    model = load_model(root / "out" / "model")
    train = model.network_
    # the saved model holds no sensitive column: take the synthetic network's own, row for row
    full = synthetic_network(500, seed=7)
    assert (full.member_ids == train.member_ids).all()
    from dataclasses import replace

    train = replace(train, sensitive=full.sensitive)
    heldout = None
    rows = np.arange(train.n_members)
    slates = rank_all(model.rank, rows, k=10)
    big = evaluation_extras(
        slates,
        train=train,
        heldout=heldout,
        communities=model.communities_,
        k=10,
        bootstrap_samples=0,
    )
    assert any(
        name.startswith("reach/small/") or name.startswith("reach/medium/") for name in big.metrics
    )
    assert "skew_at_10/gender/a" in big.metrics
    suppressed = evaluation_extras(
        slates,
        train=train,
        heldout=heldout,
        communities=model.communities_,
        k=10,
        min_group_size=10**6,
        bootstrap_samples=0,
    )
    per_group = [
        n
        for n in suppressed.metrics
        if n.startswith(
            (
                "skew_at_",
                "min_skew",
                "reach/small",
                "reach/medium",
                "reach/large",
                "network_size/small",
                "network_size/medium",
                "network_size/large",
            )
        )
    ]
    assert per_group == []
    for name, table in suppressed.tables.items():
        assert table["suppressed"].all(), name
        figures = table.drop(
            columns=["group", "suppressed", "members"], errors="ignore"
        ).select_dtypes("number")
        assert figures.isna().all().all(), name
    assert isinstance(slates, Slates)


def test_model_requirements_name_only_what_it_needs(run):
    """No leidenalg (never imported); faiss-cpu (the extra ``ann``) only for a faiss index."""
    root, uri, _, found = run
    import mlflow

    mlflow.set_tracking_uri(uri)
    path = mlflow.pyfunc.get_model_dependencies(f"runs:/{found.info.run_id}/pyfunc")
    names = {line.split("==")[0] for line in open(path).read().split() if line}
    assert {"mlflow", "numpy", "scikit-learn", "implicit", "igraph"} <= names
    assert not (root / "out" / "model" / "als_index.npy").exists()  # 500 members: exact search
    assert "leidenalg" not in names and "faiss-cpu" not in names


@pytest.fixture
def without_matplotlib(monkeypatch):
    """As if the extra ``reports`` were not installed."""
    from training.reports import plotting_available

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    plotting_available.cache_clear()
    yield
    plotting_available.cache_clear()


def test_without_matplotlib_plots_are_skipped_with_one_warning(
    tmp_path, tmp_path_factory, without_matplotlib, caplog
):
    uri = shared_store(tmp_path_factory)
    out = tmp_path / "out"
    code = main(
        [
            "train",
            "--output",
            str(out),
            *TINY,
            "--set",
            f"mlflow.tracking_uri={uri}",
            "--set",
            "mlflow.experiment=reports-without-plots",
            "--set",
            "mlflow.log_model=false",
            "--set",
            "evaluation.bootstrap_samples=20",
        ]
    )
    assert code == 0
    warned = [r for r in caplog.records if "pip install 'plusone[reports]'" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelname == "WARNING"
    assert not (out / "plots").exists()
    assert (out / "per_member.parquet").is_file()
    assert "reach/mean_gain" in json.loads((out / "metrics.json").read_text())
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("reports-without-plots")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and "reach/mean_gain" in found.data.metrics
    top = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.json", "config.yaml", "model", "groups", "per_member.parquet"} <= top
    assert "plots" not in top
