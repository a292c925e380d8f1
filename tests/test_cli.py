"""End to end: recsys train → rank → evaluate on a small synthetic network, MLflow in tmp."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from cli import main

DESIGN_METRICS = [
    "recall_at_20",
    "ndcg_at_20",
    "coverage",
    "bridge_rate",
    "exposure_gini",
    "exposure_atkinson",
    "max_inbound_share",
    "plus_one_balance",
    "equity/gender/exposure_ratio",
    "equity/gender/recall_ratio",
    "baseline/adamic_adar/recall_at_20",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{root}/mlflow.db"
    code = main(
        [
            "train",
            "--output",
            str(root / "out"),
            "--set",
            "synthetic.members=800",
            "--set",
            f"mlflow.tracking_uri={uri}",
            "--set",
            "candidates.pool_size=100",
            "--set",
            "candidates.als.iterations=4",
            "--set",
            "mlflow.experiment=e2e",
            "--set",
            "evaluation.max_members=500",
        ]
    )
    assert code == 0
    return root, uri


def test_train_writes_model_metrics_config_and_run(trained, capsys):
    root, uri = trained
    out = root / "out"
    assert (out / "model" / "manifest.json").is_file()
    assert (out / "config.yaml").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    for name in DESIGN_METRICS:
        assert name in metrics, name
    assert 0 < metrics["recall_at_20"] <= 1 and 0 <= metrics["bridge_rate"] <= 1
    assert not any("@" in k for k in metrics)
    # a sample of 500 of the 800 members was ranked, and the run says so
    assert metrics["evaluation/ranked_members"] == 500
    assert metrics["evaluation/ranked_share"] == pytest.approx(500 / 800)

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("e2e")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    for name in DESIGN_METRICS:
        assert run.data.metrics[name] == pytest.approx(metrics[name]), name
    assert run.data.params["split.holdout_fraction"] == "0.1"
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    for name in ("bridge_weight", "capacity_multiple", "floor_slots", "floor_depth"):
        assert run.data.params[f"rerank.tuned.{name}"] == str(manifest["rerank_params"][name]), (
            name
        )
    assert (
        run.data.tags["rerank.validation_bounds_met"]
        == str(manifest["rerank_report"]["all_bounds_met"]).lower()
    )
    assert run.data.tags["dataset"].startswith("synthetic-800")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "config.yaml", "model"} <= artifacts


def test_rank_one_member_json(trained, capsys):
    root, _ = trained
    members = pd.read_parquet(root / "out" / "model" / "members.parquet")
    member = members["member_id"].iloc[5]
    assert (
        main(
            [
                "rank",
                "--model",
                str(root / "out" / "model"),
                "--member",
                member,
                "--k",
                "7",
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["member_id"] == member
    assert 0 < len(payload["introductions"]) <= 7
    for intro in payload["introductions"]:
        assert set(intro) == {"member_id", "score", "reasons"}
        assert intro["member_id"] != member
        assert {"shared_interests", "mutual_contacts", "bridges_communities"} <= set(
            intro["reasons"]
        )
    scores = [i["score"] for i in payload["introductions"]]
    assert scores == sorted(scores, reverse=True)
    # without --json: a readable list with reasons
    assert (
        main(["rank", "--model", str(root / "out" / "model"), "--member", member, "--k", "3"]) == 0
    )
    assert f"Introductions for {member}" in capsys.readouterr().out


def test_rank_unknown_member_is_a_clear_error(trained, capsys):
    root, _ = trained
    assert (
        main(["rank", "--model", str(root / "out" / "model"), "--member", "nobody", "--json"]) == 2
    )
    assert "unknown member 'nobody'" in capsys.readouterr().err


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_batch_rank_to_file(trained, tmp_path, ext):
    root, _ = trained
    members = pd.read_parquet(root / "out" / "model" / "members.parquet")["member_id"]
    listing = tmp_path / "members.txt"
    listing.write_text("\n".join(members.iloc[:25]) + "\n")
    out = tmp_path / f"slates.{ext}"
    assert (
        main(
            [
                "rank",
                "--model",
                str(root / "out" / "model"),
                "--members",
                str(listing),
                "--k",
                "5",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    frame = (
        pd.read_csv(out, dtype={"member_id": str, "other_id": str})
        if ext == "csv"
        else pd.read_parquet(out)
    )
    assert list(frame.columns) == ["member_id", "rank", "other_id", "score"]
    assert set(frame["member_id"]) <= set(members.iloc[:25])
    assert frame.groupby("member_id")["rank"].max().max() <= 5
    assert (frame["member_id"] != frame["other_id"]).all()


def test_batch_rank_unknown_member_names_the_line(trained, tmp_path, capsys):
    root, _ = trained
    listing = tmp_path / "members.txt"
    listing.write_text("ghost\n")
    assert (
        main(
            [
                "rank",
                "--model",
                str(root / "out" / "model"),
                "--members",
                str(listing),
                "--k",
                "5",
                "--output",
                str(tmp_path / "x.csv"),
            ]
        )
        == 2
    )
    assert "line 1: unknown member 'ghost'" in capsys.readouterr().err


def test_evaluate_reproduces_training_metrics(trained, capsys):
    root, _ = trained
    assert main(["evaluate", "--model", str(root / "out" / "model"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    trained_metrics = json.loads((root / "out" / "metrics.json").read_text())
    for name in DESIGN_METRICS:
        assert metrics[name] == pytest.approx(trained_metrics[name], rel=1e-6, abs=1e-9), name


def test_generate_writes_input_layout(tmp_path):
    assert (
        main(["generate", "--members", "300", "--output", str(tmp_path / "net"), "--seed", "2"])
        == 0
    )
    from recsys import load_network

    net = load_network(tmp_path / "net", sensitive_attributes=["gender"])
    assert net.n_members == 300


def test_failed_training_leaves_no_model_and_a_failed_run(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "members.csv").write_text("member_id\na\nb\n")
    (bad / "interests.csv").write_text("member_id,interest\na,x\n")
    (bad / "connections.csv").write_text("member_a,member_b\na,zed\n")
    uri = f"sqlite:///{tmp_path}/runs.db"
    code = main(
        [
            "train",
            "--data",
            str(bad),
            "--output",
            str(tmp_path / "out"),
            "--set",
            f"mlflow.tracking_uri={uri}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "connections.csv" in err and "line 2" in err and "zed" in err
    assert not (tmp_path / "out" / "model").exists()
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("plusone").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_unknown_set_key_is_an_error(tmp_path, capsys):
    assert main(["train", "--output", str(tmp_path / "o"), "--set", "rerank.nope=1"]) == 2
    assert "rerank.nope: unknown key" in capsys.readouterr().err


def test_serve_refuses_a_bad_precompute_before_starting(capsys):
    assert main(["serve", "--model", "nowhere", "--precompute", "most"]) == 2
    assert (
        "--precompute: expected 'all' or a whole number of members, got 'most'"
        in capsys.readouterr().err
    )


def test_serve_without_the_serve_extra_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "--model", "nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "recsys serve: error: the HTTP service needs uvicorn, which is not installed: "
        "pip install 'plusone[serve]'"
    )


ROOT = Path(__file__).resolve().parents[1]


def _python(*args: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this interpreter on the worktree's packages (not an installed copy)."""
    env = dict(os.environ if environ is None else environ)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_script_is_the_cli_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["recsys"] == "cli:main"
    assert "cli*" in project["tool"]["setuptools"]["packages"]["find"]["include"]


@pytest.mark.parametrize(
    "how", [("-m", "cli"), ("cli/__main__.py",)], ids=["python -m cli", "spark-submit's file"]
)
def test_cli_help_runs_as_a_module_and_as_a_file(how):
    done = _python(*how, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: recsys")
    for command in ("train", "evaluate", "rank", "broker", "serve", "sweep", "compare"):
        assert command in done.stdout


def test_cli_sets_single_threaded_blas_before_numpy_loads():
    """OpenBLAS reads its thread count when numpy loads: cli._common must set it before."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    code = (
        "import cli\n"
        "from threadpoolctl import threadpool_info\n"
        "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))"
    )
    done = _python("-c", code, environ=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
