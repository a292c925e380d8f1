"""The bad-input corpus: every malformed table, config, command line and tampered model of
``tables.py``, ``configs.py`` and ``models.py`` is refused with exit status 2 and one message
that names the file (and the line, where there is one), leaving no model and no MLflow run
RUNNING; what is normalised instead loads to the valid network.

Commands run in-process through ``cli.main`` (a train on bad input stops while loading, in
milliseconds); tampered models are loaded by the library, the command line and the service's
directory source. Networks are the corpus's 30 members (``network.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cli
from recsys import ModelFormatError, load_model, load_network, verify_model_dir
from serving import Recommender

from . import configs, models, tables
from .network import member_id, write_base


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> str:
    """One SQLite store for the module (creating one costs a second)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="module")
def valid_network(tmp_path_factory):
    return load_network(write_base(tmp_path_factory.mktemp("valid")))


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(lines) == 1, lines
    return lines[0]


def _running(tracking: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    runs = client.search_runs(ids, filter_string="attributes.status = 'RUNNING'")
    return [r.info.run_id for r in runs]


def _train(tmp_path: Path, tracking: str, *extra: str, data: Path | None = None) -> int:
    args = ["train", "--output", str(tmp_path / "out")]
    if data is not None:
        args += ["--data", str(data)]
    args += [*extra, "--set", f"mlflow.tracking_uri={tracking}", "--set", "mlflow.log_model=false"]
    return cli.main(args)


def _assert_where(message: str, file: str | None, line: int | None) -> None:
    if file is None:
        return
    if line is None:
        assert f"{file}:" in message, message
    else:
        unit = "row" if file.endswith(".parquet") else "line"
        assert f"{file}, {unit} {line}:" in message, message


def _assert_nothing_left(out: Path, tracking: str) -> None:
    assert not (out / "model").exists(), "a failed job left a model"
    if out.is_dir():
        assert not [p.name for p in out.iterdir() if p.name.startswith(".staging-")]
    assert _running(tracking) == [], "a failed job left its MLflow run RUNNING"


# ------------------------------------------------------------------------------- tables
@pytest.mark.parametrize(
    ("edit", "file", "line", "fragment"),
    [case[1:] for case in tables.ERRORS],
    ids=[case[0] for case in tables.ERRORS],
)
def test_malformed_table_is_refused(tmp_path, tracking, capsys, edit, file, line, fragment):
    data = write_base(tmp_path / "data")
    edit(data)
    assert _train(tmp_path, tracking, data=data) == 2
    message = _error_line(capsys)
    _assert_where(message, file, line)
    assert fragment in message, message
    _assert_nothing_left(tmp_path / "out", tracking)


@pytest.mark.parametrize(
    ("args", "file", "line", "fragment"),
    [case[1:] for case in tables.OPTION_ERRORS],
    ids=[case[0] for case in tables.OPTION_ERRORS],
)
def test_option_at_odds_with_the_tables_is_refused(
    tmp_path, tracking, capsys, args, file, line, fragment
):
    data = write_base(tmp_path / "data")
    assert _train(tmp_path, tracking, *args, data=data) == 2
    message = _error_line(capsys)
    _assert_where(message, file, line)
    assert fragment in message, message
    _assert_nothing_left(tmp_path / "out", tracking)


@pytest.mark.parametrize(
    "edit", [case[1] for case in tables.ACCEPTED], ids=[case[0] for case in tables.ACCEPTED]
)
def test_normalised_table_loads_as_the_valid_one(tmp_path, valid_network, edit):
    data = write_base(tmp_path / "data")
    edit(data)
    net = load_network(data)
    np.testing.assert_array_equal(net.member_ids, valid_network.member_ids)
    assert (net.adjacency != valid_network.adjacency).nnz == 0
    assert (net.member_interests != valid_network.member_interests).nnz == 0
    assert list(net.attributes.columns) == list(valid_network.attributes.columns)


# ------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    ("config", "args", "where", "fragment"),
    [case[1:] for case in configs.TRAIN_ERRORS],
    ids=[case[0] for case in configs.TRAIN_ERRORS],
)
def test_bad_config_is_refused(tmp_path, tracking, capsys, config, args, where, fragment):
    data = write_base(tmp_path / "data")
    (tmp_path / "a-file").write_text("")
    args = [a.replace("TMP", str(tmp_path)) for a in args]
    if config is not None:
        (tmp_path / "config.yaml").write_bytes(config)
        args = ["--config", str(tmp_path / "config.yaml"), *args]
    before = len(_all_runs(tracking))
    assert _train(tmp_path, tracking, *args, data=data) == 2
    message = _error_line(capsys)
    assert where.replace("TMP", str(tmp_path)) in message, message
    assert fragment in message, message
    _assert_nothing_left(tmp_path / "out", tracking)
    assert len(_all_runs(tracking)) == before, "a config error started an MLflow run"


def _all_runs(tracking: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    return [r.info.run_id for r in client.search_runs(ids)] if ids else []


@pytest.mark.parametrize(
    ("argv", "where", "fragment"),
    [case[1:] for case in configs.COMMAND_ERRORS],
    ids=[case[0] for case in configs.COMMAND_ERRORS],
)
def test_bad_command_line_is_refused(
    tmp_path, saved_model, capsys, monkeypatch, argv, where, fragment
):
    (tmp_path / "bad-members.txt").write_bytes(b"m00\n\nm01\n\xff\xfe\n")
    (tmp_path / "members.txt").write_text("m00\n\n  m01 \nm99\n")
    (tmp_path / "a-file").write_text("")
    for name, value in configs.COMMAND_ENV.get(argv[0] + ":" + where, {}).items():
        monkeypatch.setenv(name, value)
    argv = [a.replace("TMP", str(tmp_path)).replace("MODEL", str(saved_model)) for a in argv]
    assert cli.main(argv) == 2
    message = _error_line(capsys)
    assert where.replace("TMP", str(tmp_path)) in message, message
    assert fragment in message, message


# ------------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A model fitted on the corpus network and saved (a published link to its version)."""
    from recsys import IntroductionRecommender, save_model

    network = load_network(write_base(tmp_path_factory.mktemp("model-data")))
    model = IntroductionRecommender(pool_size=20, als_iterations=2, random_state=0).fit(network)
    return save_model(model, tmp_path_factory.mktemp("model") / "model")


@pytest.mark.parametrize(
    ("tamper", "file", "fragment"),
    [case[1:] for case in models.TAMPERED],
    ids=[case[0] for case in models.TAMPERED],
)
def test_tampered_model_is_refused(tmp_path, saved_model, capsys, tamper, file, fragment):
    model_dir = tmp_path / "model"
    shutil.copytree(saved_model.resolve(), model_dir)
    tamper(model_dir)
    named = f"{model_dir}/{file}" if file else str(model_dir)
    with pytest.raises(ModelFormatError) as caught:
        load_model(model_dir)
    assert named in str(caught.value) and fragment in str(caught.value), str(caught.value)
    with pytest.raises(ModelFormatError) as mapped:  # memory-mapped arrays are checked alike
        load_model(model_dir, mmap=True)
    assert named in str(mapped.value) and fragment in str(mapped.value), str(mapped.value)
    # the command line: one line, exit 2, naming the file
    assert cli.main(["rank", "--model", str(model_dir), "--member", member_id(0)]) == 2
    message = _error_line(capsys)
    assert named in message and fragment in message, message
    # what verify_model_dir accepts, load_model accepts too; what it refuses, it names
    try:
        verify_model_dir(model_dir)
    except ModelFormatError as err:
        assert str(model_dir) in str(err)
    # the service refuses it too, naming the source, never its private copy
    with pytest.raises(ModelFormatError) as served:
        Recommender.load(model_dir, cache_size=0, warm_on_reload=0)
    assert str(model_dir) in str(served.value) and "plusone-serve-" not in str(served.value)


def test_codes_with_leading_zeros_and_na_cells_read_alike_in_csv_and_parquet(tmp_path):
    data = write_base(tmp_path / "data")
    text = (data / "members.csv").read_text()
    text = text.replace("\nm01,m,r1,", "\nm01,m,007,").replace("\nm02,,r2,", "\nm02,,NA,")
    (data / "members.csv").write_text(text.replace("\nm03,f,r3,", "\nm03,f,   ,"))
    from_csv = load_network(data).attributes["region"]
    import pandas as pd

    frame = pd.read_csv(data / "members.csv", dtype=str, keep_default_na=False)
    frame.to_parquet(data / "members.parquet", index=False)
    (data / "members.csv").unlink()
    from_parquet = load_network(data).attributes["region"]
    for region in (from_csv, from_parquet):
        assert region.iloc[1] == "007" and region.iloc[0] == "r0"
        assert region.iloc[2:4].isna().all()  # NA and whitespace only: missing
