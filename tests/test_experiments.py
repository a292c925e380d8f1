"""Sweeps (parent + children + trade-off plot) and run comparison (report with its one-sentence
answer).
"""

import sys

import numpy as np
import pandas as pd
import pytest

from cli import main

TINY = [
    "--set",
    "synthetic.members=500",
    "--set",
    "candidates.als.iterations=3",
    "--set",
    "candidates.pool_size=60",
    "--set",
    "evaluation.bootstrap_samples=50",
]
VERDICTS = (
    "Yes — B spreads introductions received more equally",
    "No — B spreads introductions received less equally",
    "No clear change",
)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    # shared with the other issue-5 tests
    uri = f"sqlite:///{tmp_path_factory.getbasetemp()}/issue5-mlflow.db"
    spec = root / "sweep.yaml"
    spec.write_text(
        "base: {mlflow: {register_model: true}}\nexperiment: sweeps-test\ngrid:\n  "
        "rerank.enabled: [false, true]\n"
    )
    code = main(
        [
            "sweep",
            "--config",
            str(spec),
            "--output",
            str(root / "out"),
            *TINY,
            "--set",
            f"mlflow.tracking_uri={uri}",
        ]
    )
    assert code == 0
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("sweeps-test").experiment_id])
    return root, uri, client, runs


def test_sweep_logs_parent_children_and_tradeoff_plot(sweep):
    root, _, client, runs = sweep
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["kind"] == "sweep"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(c.data.params["rerank.enabled"] for c in children) == ["False", "True"]
    assert sorted(c.info.run_name for c in children) == ["enabled=False", "enabled=True"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "sweep_results.csv",
        "tradeoff.png",
    }
    results = pd.read_csv(root / "out" / "sweep_results.csv")
    assert len(results) == 2 and {
        "run_id",
        "recall_at_20",
        "bridge_rate",
        "exposure_gini",
        "pareto_bridge_rate",
    } <= set(results.columns)
    assert set(results["run_id"]) == {c.info.run_id for c in children}
    assert results["pareto_bridge_rate"].any()
    # sweep points never register models, whatever the base config says
    assert not any(
        v.run_id in {c.info.run_id for c in children}
        for v in client.search_model_versions("name='plusone'")
    )


def test_compare_writes_report_with_the_answer(sweep, tmp_path, capsys):
    root, uri, _, runs = sweep
    results = pd.read_csv(root / "out" / "sweep_results.csv").sort_values("point")
    plain, ours = results["run_id"].tolist()
    report = tmp_path / "report.md"
    assert (
        main(
            [
                "compare",
                plain,
                ours,
                "--tracking-uri",
                uri,
                "--output",
                str(report),
                "--bootstrap",
                "200",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    text = report.read_text()
    verdict = next(line for line in text.splitlines() if line.startswith("**"))
    assert verdict.strip("*").startswith(VERDICTS), verdict
    assert verdict in out and "| recall_at_20 |" in out and f"report: {report}" in out
    assert "| recall_at_20 |" in text and "paired" in text
    assert (tmp_path / "report_files" / "lorenz_a_b.png").is_file()
    assert (tmp_path / "report_files" / "atkinson_difference.png").is_file()
    html = tmp_path / "report.html"
    assert (
        main(
            [
                "compare",
                plain,
                ours,
                "--tracking-uri",
                uri,
                "--output",
                str(html),
                "--bootstrap",
                "50",
            ]
        )
        == 0
    )
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    # without --output: the same Markdown, only on stdout
    capsys.readouterr()
    assert main(["compare", plain, ours, "--tracking-uri", uri, "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Run comparison") and "report:" not in out


@pytest.fixture
def without_matplotlib(monkeypatch):
    """As if the extra ``reports`` were not installed."""
    from training.reports import plotting_available

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    plotting_available.cache_clear()
    yield
    plotting_available.cache_clear()


def test_compare_without_matplotlib_reports_all_but_its_own_plots(
    sweep, tmp_path, without_matplotlib, caplog
):
    root, uri, _, _ = sweep
    plain, ours = pd.read_csv(root / "out" / "sweep_results.csv").sort_values("point")["run_id"]
    report = tmp_path / "report.md"
    args = ["compare", plain, ours, "--tracking-uri", uri, "--output", str(report)]
    assert main([*args, "--bootstrap", "20"]) == 0
    text = report.read_text()
    assert "| recall_at_20 |" in text and "paired" in text
    files = tmp_path / "report_files"
    assert not (files / "lorenz_a_b.png").exists()
    assert not (files / "atkinson_difference.png").exists()
    # the runs' own plots (drawn when they were trained) are still shown
    assert (files / "a_lorenz_introductions_received.png").is_file()
    warned = [r for r in caplog.records if "pip install 'plusone[reports]'" in r.getMessage()]
    assert len(warned) == 1


def test_compare_unknown_run_is_a_clear_error(sweep, capsys):
    _, uri, _, _ = sweep
    assert main(["compare", "nope", "nada", "--tracking-uri", uri]) == 2
    assert "run 'nope' not found" in capsys.readouterr().err


def test_pareto_front():
    from experiments.sweep import pareto_front

    x = np.array([0.1, 0.2, 0.3, 0.15, np.nan])
    y = np.array([0.5, 0.4, 0.1, 0.3, 0.9])
    assert pareto_front(x, y).tolist() == [True, True, True, False, False]
    # lower is better on x: only the point with the smallest x and highest y survives here
    assert pareto_front(x, y, maximize_x=False).tolist() == [True, False, False, False, False]
    assert pareto_front(np.array([1.0, 1.0]), np.array([2.0, 2.0])).tolist() == [
        True,
        True,
    ]  # ties: neither dominates


def test_atkinson_difference_known_answers():
    from experiments.compare import atkinson_difference

    rng = np.random.default_rng(0)
    x = rng.lognormal(sigma=1.0, size=300)
    same = atkinson_difference(x, x.copy(), paired=True, n_boot=100)
    assert same.difference == 0 and same.ci_low == 0 == same.ci_high and not same.significant
    spread = atkinson_difference(
        x, np.sqrt(x), paired=True, n_boot=200
    )  # sqrt compresses: more equal
    assert spread.difference < 0 and spread.significant and spread.p_value < 0.01
    noisy = atkinson_difference(x, rng.permutation(x), paired=False, n_boot=200)
    assert noisy.p_value > 0.05 and not noisy.significant


def test_sweep_file_is_strict(tmp_path):
    from experiments.sweep import load_sweep
    from training.config import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {rerank.bridge_weight: [0, 1]}\nunknown: 1\n")
    with pytest.raises(ConfigError, match="unknown"):
        load_sweep(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("grid: {rerank.bridge_wieght: [0, 1]}\n")
    spec, base = load_sweep(typo)
    from experiments.sweep import point_config

    with pytest.raises(ConfigError, match="unknown key"):
        point_config(base, {"rerank.bridge_wieght": 0}, overrides=[], experiment="x")
