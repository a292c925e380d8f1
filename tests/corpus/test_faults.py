"""Faults: a job killed at each stage, two jobs on one output, readers during saves.

A train runs as a subprocess (``python -m cli train``) on the corpus's 30-member network and is
killed with SIGKILL when the log line of a stage appears on its stderr; what it leaves must be
the previous output, whole (or, killed after its publish, the new one, whole), never a mix, and
its MLflow run must end FAILED once the next job looks. Readers polling a model while it is
saved again and again must never fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cli
from recsys import (
    IntroductionRecommender,
    load_model,
    load_network,
    publish_dir,
    save_model,
    verify_model_dir,
)
from training.output import JobOutput
from training.tracking import fail_dead_runs

from .network import write_base

REPO = Path(__file__).resolve().parents[2]
STAGES = [
    "loading data",
    "fitting: acceptance model",
    "evaluating",
    "saving",
    "logging to MLflow",
    "publishing",
]


def _args(data: Path, out: Path, tracking: str) -> list[str]:
    return [
        "train",
        "--data",
        str(data),
        "--output",
        str(out),
        "--set",
        f"mlflow.tracking_uri={tracking}",
        "--set",
        "mlflow.log_model=false",
        "--set",
        "evaluation.bootstrap_samples=0",
        "--set",
        "candidates.als.iterations=2",
    ]


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(process: subprocess.Popen, stage: str) -> bool:
    """Read the job's log until ``stage`` starts; False if it ended first."""
    assert process.stderr is not None
    for line in process.stderr:
        if f"recsys.cli: {stage}" in line:
            return True
    return False


def _runs(tracking: str, status: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, filter_string=f"attributes.status = '{status}'") if ids else []


def _published(out: Path) -> Path:
    """The version OUT/current names, checked whole: every entry of it, read through OUT, comes
    from it, and its model verifies."""
    version = (out / "current").resolve()
    for name in ("model", "metrics.json", "config.yaml", "per_member.parquet", "groups"):
        assert (out / name).resolve() == version / name, name
    verify_model_dir(out / "model")
    for table in (out / "groups").glob("*.csv"):  # no suppressed group, not even its label
        assert "True" not in table.read_text(), table.name
    metrics = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert metrics["evaluated_members"] > 0 and manifest["n_members"] == 30
    return version


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A data directory, a tracking store and one finished output to kill jobs over."""
    root = tmp_path_factory.mktemp("faults")
    data = write_base(root / "data")
    tracking = f"sqlite:///{root}/mlflow.db"
    out = root / "out"
    assert cli.main(_args(data, out, tracking)) == 0
    return data, out, tracking


@pytest.mark.parametrize("stage", STAGES)
def test_a_job_killed_at_any_stage_leaves_the_previous_output_whole(job, stage):
    data, out, tracking = job
    before = _published(out)
    process = _start(_args(data, out, tracking))
    try:
        reached = _wait_for(process, stage)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert reached, f"the job ended before {stage!r}"
    after = _published(out)  # whole, whichever it is
    if stage != "publishing":
        assert after == before, "a killed job published"
    # the next job clears what the dead one left and marks its run FAILED
    with JobOutput(out).staging():
        pass
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]
    import mlflow

    mlflow.set_tracking_uri(tracking)
    for experiment in mlflow.search_experiments():
        fail_dead_runs(mlflow, experiment.experiment_id)
    assert _runs(tracking, "RUNNING") == []


def test_a_second_job_on_the_same_output_stops_at_once(job, tmp_path, capsys):
    data, _, tracking = job
    out = tmp_path / "out"
    first = _start(_args(data, out, tracking))
    try:
        assert _wait_for(first, "loading data")
        assert cli.main(_args(data, out, tracking)) == 2
        err = capsys.readouterr().err
        assert f"--output {out}: another job (pid {first.pid}) is writing to it" in err
    finally:
        first.kill()
        first.communicate(timeout=60)
    assert not (out / "model").exists()  # the second job wrote nothing either


def test_readers_never_fail_while_a_model_is_saved_again_and_again(tmp_path):
    network = load_network(write_base(tmp_path / "data"))
    model = IntroductionRecommender(pool_size=20, als_iterations=2).fit(network)
    path = save_model(model, tmp_path / "model")
    saves, done = 60, threading.Event()
    failures: list[str] = []

    def save_repeatedly() -> None:
        try:
            for _ in range(saves):
                save_model(model, path)
        finally:
            done.set()

    writer = threading.Thread(target=save_repeatedly)
    writer.start()
    reads = loads = 0
    while not done.is_set():
        try:
            json.loads((path / "manifest.json").read_text())["files"]
            reads += 1
            if reads % 25 == 0:
                load_model(path)
                loads += 1
        except Exception as err:  # what a polling reader would see
            failures.append(f"{type(err).__name__}: {err}")
    writer.join()
    assert failures == [] and reads > saves and loads > 0, (failures[:3], reads, loads)
    # only the current version and the one before it are kept
    versions = [p for p in tmp_path.iterdir() if p.name.startswith(".model.v-")]
    assert len(versions) == 2 and path.resolve() in versions


def test_a_writer_killed_while_saving_leaves_a_temporary_the_next_save_removes(tmp_path):
    network = load_network(write_base(tmp_path / "data"))
    model = IntroductionRecommender(pool_size=20, als_iterations=2).fit(network)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    import socket

    host = socket.gethostname()
    left = tmp_path / f".model.tmp-{pid}-0badf00d@{host}"
    (left / "model").mkdir(parents=True)
    (left / "model" / "member_factors.npy").write_bytes(b"half")
    old_style = tmp_path / ".model.tmp-ab12cd34"  # from a build before this one
    old_style.mkdir()
    os.utime(old_style, (0, 0))
    save_model(model, tmp_path / "model")
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model."))
    assert not [n for n in names if ".tmp-" in n], names
    load_model(tmp_path / "model")


def test_publish_replaces_a_directory_written_before_links(tmp_path):
    """A model saved by an older build is a real directory: the first publish over it moves it
    aside as the previous version."""
    old = tmp_path / "model"
    old.mkdir()
    (old / "note").write_text("old")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "note").write_text("new")
    publish_dir(staged, old)
    assert old.is_symlink() and (old / "note").read_text() == "new"
    previous = [p for p in tmp_path.iterdir() if p.name.endswith("-legacy")]
    assert len(previous) == 1 and (previous[0] / "note").read_text() == "old"


def test_two_first_runs_on_a_fresh_sqlite_store_both_start(tmp_path):
    """Both would create the store's tables (one failed with 'duplicate column name')."""
    tracking = f"sqlite:///{tmp_path}/fresh.db"
    code = (
        "import sys; from training.config import load_config; "
        "from training.tracking import tracked_run; "
        "config = load_config(None, overrides=[f'mlflow.tracking_uri={sys.argv[1]}']); "
        "run = tracked_run(config); run.__enter__(); run.__exit__(None, None, None)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, tracking],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [run.communicate(timeout=120)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    assert len(_runs(tracking, "FINISHED")) == 2
