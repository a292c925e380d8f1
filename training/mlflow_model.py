"""Log a saved Plus One model to MLflow as a pyfunc (from code), and register it.

The pyfunc (``training/pyfunc_model.py``) wraps the saved-model directory, which is logged
as its artifact ``model_dir``: ``mlflow.pyfunc.load_model(uri).predict(frame)`` ranks, and
``serving`` can download ``models:/NAME@ALIAS`` and find the directory (with ``manifest.json``)
inside ``artifacts/model_dir``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.batch import slates_frame

__all__ = ["predict_slates", "model_signature", "log_pyfunc_model", "PYFUNC_CODE", "MODEL_NAME"]

logger = logging.getLogger(__name__)

#: The models-from-code file MLflow stores and runs on load.
PYFUNC_CODE = Path(__file__).resolve().with_name("pyfunc_model.py")
#: Name of the MLflow model inside a run.
MODEL_NAME = "pyfunc"
#: What the pyfunc needs installed besides the plusone package itself.
_REQUIREMENTS = (
    "mlflow",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "implicit",
    "igraph",
)
#: Also needed when the saved model holds a faiss index (file ``als_index.npy``): loading
#: deserializes it. faiss is the optional extra ``ann`` of plusone, so only such models name it.
_ANN_REQUIREMENT = "faiss-cpu"


def predict_slates(model: Any, frame: pd.DataFrame, *, default_k: int = 20) -> pd.DataFrame:
    """Slates for the members of ``frame`` (``member_id``, optional ``k`` per row).

    Returns the long table ``member_id, rank, other_id, score`` (rank from 1, padding dropped).
    Unknown members are an error naming them (a slate for nobody would be silently empty).
    """
    if not isinstance(frame, pd.DataFrame) or "member_id" not in frame.columns:
        raise ValueError("input must be a DataFrame with a member_id column (and optionally k)")
    members = frame["member_id"].astype(str).to_numpy()
    rows = model.network_.rows_of(members).astype(np.int64)
    if (rows < 0).any():
        unknown = sorted(set(members[rows < 0]))
        raise ValueError(
            "unknown member(s): "
            f"{', '.join(map(repr, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}"
        )
    if "k" in frame.columns and frame["k"].notna().any():
        ks = frame["k"].fillna(default_k).astype(np.int64).to_numpy()
    else:
        ks = np.full(len(rows), default_k, dtype=np.int64)
    if len(rows) == 0:
        return slates_frame(model, rows, np.empty((0, 1), np.int32), np.empty((0, 1), np.float32))
    if ks.min() < 1:
        raise ValueError(f"k must be a positive whole number, got {int(ks.min())}")
    ids, scores = model.rank(rows, int(ks.max()))
    ids = np.where(np.arange(ids.shape[1])[None, :] < ks[:, None], ids, -1)
    return slates_frame(model, rows, ids, scores).astype({"rank": np.int64, "score": np.float64})


def model_signature():
    """Input ``member_id`` (string) and optional ``k`` (long); output the slates table."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "member_id"), ColSpec("long", "k", required=False)]),
        outputs=Schema(
            [
                ColSpec("string", "member_id"),
                ColSpec("long", "rank"),
                ColSpec("string", "other_id"),
                ColSpec("double", "score"),
            ]
        ),
    )


def _requirements(model_dir: Path) -> list[str]:
    names = list(_REQUIREMENTS)
    if (Path(model_dir) / "als_index.npy").is_file():
        names.append(_ANN_REQUIREMENT)
    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def log_pyfunc_model(
    mlflow: Any,
    *,
    model_dir: Path,
    k: int = 20,
    registered_model_name: str | None = None,
    alias: str | None = None,
) -> Any:
    """Log the pyfunc in the active run; register it (and point ``alias`` at the new version) when
    named.

    Returns MLflow's ``ModelInfo``. The input example is a member of the model, so MLflow's
    check that the example predicts exercises a real ranking.
    """
    import pyarrow.parquet as pq

    member = (
        pq.read_table(Path(model_dir) / "members.parquet", columns=["member_id"])
        .column(0)[0]
        .as_py()
    )
    example = pd.DataFrame({"member_id": [str(member)], "k": [min(int(k), 5)]})
    info = mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=str(PYFUNC_CODE),
        artifacts={"model_dir": str(model_dir)},
        signature=model_signature(),
        input_example=example,
        pip_requirements=_requirements(model_dir),
        registered_model_name=registered_model_name,
    )
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is not None:
        logger.info("registered %s version %s", registered_model_name, version)
        if alias:
            mlflow.MlflowClient().set_registered_model_alias(
                registered_model_name, alias, str(version)
            )
            logger.info("alias %s@%s → version %s", registered_model_name, alias, version)
    elif alias:
        logger.warning(
            "mlflow.alias=%s ignored: the model is not registered (mlflow.register_model=false)",
            alias,
        )
    return info
