"""The saved-model format: a directory of plain arrays and tables with a checksummed manifest.

No pickles: a model is data, and loading one runs no code from it (arrays are read with
``allow_pickle=False``). Writing is atomic: everything goes to a temporary sibling directory,
which is renamed into place only once complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from recsys._acceptance import acceptance_from_dict
from recsys._migrations import FORMAT_VERSION, migrate
from recsys._model import IntroductionRecommender
from recsys._state import FittedState, RerankSetting
from recsys.data import Network

__all__ = ["save_model", "load_model", "ModelFormatError", "FORMAT_VERSION", "verify_model_dir"]

logger = logging.getLogger(__name__)

FORMAT_NAME = "plusone-model"
#: Member columns a saved model keeps: what ranking needs, never a sensitive attribute.
OPERATIONAL_COLUMNS = ("open_to_intros", "plus_one", "capacity", "pledge_per_month")


class ModelFormatError(ValueError):
    """A model directory that is missing, incomplete, of an unknown format or fails its
    checksums.
    """


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_csr(path: Path, matrix: sp.csr_matrix, *, with_data: bool = True) -> None:
    arrays = {
        "indptr": matrix.indptr.astype(np.int64),
        "indices": matrix.indices.astype(np.int32),
        "shape": np.asarray(matrix.shape, dtype=np.int64),
    }
    if with_data:
        arrays["data"] = matrix.data.astype(np.float32)
    np.savez(path, **arrays)


def _load_csr(path: Path) -> sp.csr_matrix:
    with np.load(path, allow_pickle=False) as z:
        shape = tuple(int(x) for x in z["shape"])
        data = z["data"] if "data" in z.files else np.ones(len(z["indices"]), dtype=np.float32)
        return sp.csr_matrix((data, z["indices"], z["indptr"]), shape=shape)


def save_model(
    model: IntroductionRecommender,
    path: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to the directory ``path`` (replaced atomically if it exists).

    Returns the path. The manifest records the format version, the config that produced the
    model, the estimator's parameters and the SHA-256 of every file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        check_is_fitted(model)
        state = model.state_
        net = state.network
        members = pd.DataFrame(
            {"member_id": net.member_ids.astype(str), "community": state.communities}
        )
        for column in OPERATIONAL_COLUMNS:
            if column in net.attributes.columns:
                members[column] = net.attributes[column].to_numpy()
                if members[column].dtype == object:
                    members[column] = members[column].astype("string")
        members.to_parquet(tmp / "members.parquet", index=False)
        pd.DataFrame({"interest": net.interest_names.astype(str)}).to_parquet(
            tmp / "interests.parquet", index=False
        )
        _save_csr(tmp / "adjacency.npz", net.adjacency, with_data=False)
        _save_csr(tmp / "member_interests.npz", net.member_interests)
        np.save(tmp / "member_factors.npy", state.member_factors)
        als = model.sources_.get("als")  # the index built from the state's, or afresh
        index_bytes = als.index_bytes() if als is not None else None
        if index_bytes is not None:
            np.save(tmp / "als_index.npy", np.asarray(index_bytes, dtype=np.uint8))
        (tmp / "acceptance.json").write_text(json.dumps(state.acceptance.to_dict(), indent=2))
        if state.bound_groups is not None:  # opted in: bare group codes, no values or labels
            np.save(tmp / "bound_groups.npy", np.asarray(state.bound_groups, dtype=np.int16))
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "n_members": int(net.n_members),
            "n_interests": int(net.n_interests),
            "params": model.runtime_.params,  # as fitted
            "rerank_params": state.rerank.to_dict(),
            "rerank_report": dict(state.rerank_report),
            "training": {
                "pairs": state.training_pairs,
                "positives": state.training_positives,
            },
            "config": config or {},
            "metadata": metadata or {},
            "files": files,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved model to %s", target)
    return target


def _read_manifest(root: Path) -> dict[str, Any]:
    manifest_path = root / "manifest.json"
    if not root.is_dir():
        raise ModelFormatError(f"{root}: no model directory there")
    if not manifest_path.is_file():
        raise ModelFormatError(f"{root}: not a saved model (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{manifest_path}: unreadable manifest ({err})") from None
    if manifest.get("format") != FORMAT_NAME:
        raise ModelFormatError(
            f"{manifest_path}: not a Plus One model (format {manifest.get('format')!r})"
        )
    try:
        return migrate(manifest)
    except ValueError as err:
        raise ModelFormatError(f"{manifest_path}: {err}") from None


def _verified_bytes(root: Path, manifest: dict[str, Any], name: str) -> bytes:
    """A listed file's bytes, checked against the manifest's checksum: what is parsed is exactly
    what was verified, even if the directory is replaced while a model loads."""
    expected = manifest.get("files", {}).get(name)
    if expected is None:
        raise ModelFormatError(f"{root}: {name} is not listed in the manifest")
    try:
        data = (root / name).read_bytes()
    except FileNotFoundError:
        raise ModelFormatError(f"{root}: file {name} listed in the manifest is missing") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelFormatError(
            f"{root}: checksum mismatch for {name}: the model is corrupt or was modified; "
            "refusing to load it"
        )
    return data


def verify_model_dir(path: str | os.PathLike) -> dict[str, Any]:
    """Check a model directory's manifest and checksums; return the manifest or raise
    ModelFormatError.
    """
    root = Path(path)
    manifest = _read_manifest(root)
    for name, expected in manifest.get("files", {}).items():
        file = root / name
        if not file.is_file():
            raise ModelFormatError(f"{root}: file {name} listed in the manifest is missing")
        actual = _sha256(file)
        if actual != expected:
            raise ModelFormatError(
                f"{root}: checksum mismatch for {name}: the model is corrupt or was "
                "modified; refusing to load it"
            )
    return manifest


def load_model(path: str | os.PathLike) -> IntroductionRecommender:
    """Load a saved model after verifying its checksums.

    Examples
    --------
    >>> import tempfile
    >>> from recsys import IntroductionRecommender, synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> model = IntroductionRecommender(pool_size=30, als_iterations=2).fit(net)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load_model(save_model(model, f"{tmp}/model"))
    >>> bool((loaded.rank([0], k=5)[0] == model.rank([0], k=5)[0]).all())
    True
    """
    root = Path(path)
    manifest = _read_manifest(root)
    for name in manifest.get("files", {}):
        if not (root / name).is_file():  # a clear error before reading anything large
            raise ModelFormatError(f"{root}: file {name} listed in the manifest is missing")
    # every file is read once, checked against its checksum and parsed from those same bytes
    read = lambda name: io.BytesIO(_verified_bytes(root, manifest, name))  # noqa: E731
    members = pd.read_parquet(read("members.parquet"))
    interests = pd.read_parquet(read("interests.parquet"))
    adjacency = _load_csr(read("adjacency.npz"))
    member_interests = _load_csr(read("member_interests.npz"))
    factors = np.load(read("member_factors.npy"), allow_pickle=False)
    index_bytes = (
        np.load(read("als_index.npy"), allow_pickle=False)
        if "als_index.npy" in manifest.get("files", {})
        else None
    )
    try:
        acceptance = acceptance_from_dict(
            json.loads(_verified_bytes(root, manifest, "acceptance.json"))
        )
    except (KeyError, ValueError) as err:
        raise ModelFormatError(f"{root}/acceptance.json: {err}") from None

    n = len(members)
    upper = sp.triu(adjacency, k=1).tocoo()
    attributes = members[[c for c in OPERATIONAL_COLUMNS if c in members.columns]].reset_index(
        drop=True
    )
    network = Network(
        member_ids=members["member_id"].to_numpy(dtype=object),
        adjacency=adjacency,
        member_interests=member_interests,
        interest_names=interests["interest"].to_numpy(dtype=object),
        attributes=attributes,
        sensitive=pd.DataFrame(index=pd.RangeIndex(n)),
        connections=np.column_stack([upper.row, upper.col]).astype(np.int32),
        connection_times=None,
        introductions=None,
    )
    bound_groups = None
    if "bound_groups.npy" in manifest.get("files", {}):
        bound_groups = np.load(read("bound_groups.npy"), allow_pickle=False)
    try:
        state = FittedState(
            network=network,
            communities=members["community"].to_numpy(dtype=np.int32),
            member_factors=factors,
            als_index=index_bytes,
            acceptance=acceptance,
            rerank=RerankSetting.from_dict(manifest["rerank_params"]),
            rerank_report=manifest.get("rerank_report", {}),
            bound_groups=bound_groups,
            training_pairs=int(manifest["training"]["pairs"]),
            training_positives=int(manifest["training"]["positives"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFormatError(f"{root}/manifest.json: {err}") from None
    return IntroductionRecommender.from_state(state, manifest=manifest, **manifest["params"])
