"""The saved model inside Spark's Python workers: verified once per node, shared by every worker.

The first worker of a node to need a model copies its directory from the shared path into a
node-local cache, computing each file's SHA-256 as it copies and refusing the copy if one does
not match the manifest (or the manifest does not match the SHA-256 the driver read). The other
workers of the node wait on a file lock and then use that copy. Every worker loads the copy
with its large arrays memory-mapped read-only (:func:`recsys.load_model` with ``mmap=True``):
the operating system keeps one copy of those pages per node, shared by all the workers there.
What is mapped is exactly what was verified: the copy lives in a directory only this user can
write, and the shared path may be replaced afterwards without affecting it.

The cache is ``$PLUSONE_MODEL_CACHE``, else the first of ``$SPARK_LOCAL_DIRS`` (set on
executors), else the system temporary directory, under ``plusone-models-UID``. A worker holds a
shared lock on the copy it uses; the worker that makes a new copy removes the copies no worker
holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np

from recsys import IntroductionRecommender, ModelFormatError, load_model

__all__ = ["manifest_sha", "node_capacity", "node_model_dir", "node_tiebreak", "worker_model"]

logger = logging.getLogger(__name__)

#: Models loaded in this Python worker, by (directory, SHA-256 of its manifest). Spark reuses
#: Python workers across tasks, so each worker maps a model once, not once per task.
_WORKER_MODELS: dict[tuple[str, str], IntroductionRecommender] = {}
#: Open lock files of the copies this worker uses (a shared lock each, held while it lives).
_IN_USE: dict[str, object] = {}


def manifest_sha(model_dir: str | os.PathLike) -> str:
    """SHA-256 of a model directory's ``manifest.json``: the manifest names every file's
    checksum, so this one digest fixes the whole model."""
    return hashlib.sha256((Path(model_dir) / "manifest.json").read_bytes()).hexdigest()


def _cache_root() -> Path:
    base = os.environ.get("PLUSONE_MODEL_CACHE")
    if not base:
        local = os.environ.get("SPARK_LOCAL_DIRS", "").split(",")[0].strip()
        base = local or tempfile.gettempdir()
    root = Path(base) / f"plusone-models-{os.getuid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.stat().st_uid != os.getuid() or root.stat().st_mode & 0o077:
        raise PermissionError(
            f"{root}: the model cache must belong to this user and be closed to others"
        )
    return root


def _open_listed(source: Path, name: str):
    """A listed file of the shared model, opened read-only: a regular file, never through a
    link (as :func:`recsys.load_model` reads them)."""
    try:
        fd = os.open(source / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelFormatError(f"{source}/{name}: listed in the manifest but missing") from None
    except OSError as err:
        raise ModelFormatError(
            f"{source}/{name}: cannot be read ({err.strerror}); a model directory holds only "
            "regular files"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelFormatError(f"{source}/{name}: is not a regular file; refusing to read it")
    return os.fdopen(fd, "rb")


def _copy_verified(source: Path, target: Path, sha: str) -> None:
    """Copy ``source`` into ``target`` (renamed into place only when complete), checking the
    manifest against ``sha`` and every file against the manifest as it is copied."""
    manifest_bytes = (source / "manifest.json").read_bytes()
    found = hashlib.sha256(manifest_bytes).hexdigest()
    if found != sha:
        raise ModelFormatError(
            f"{source}: the model changed after the driver read it (manifest SHA-256 "
            f"{found[:12]}, expected {sha[:12]}); rank again once it is stable"
        )
    files = json.loads(manifest_bytes).get("files", {})
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:16]}.tmp-", dir=target.parent))
    try:
        for name, expected in files.items():
            if Path(name).name != name or name in ("", ".", ".."):
                raise ModelFormatError(f"{source}/manifest.json: file name {name!r} is a path")
            digest = hashlib.sha256()
            with _open_listed(source, name) as src, open(tmp / name, "wb") as dst:
                for block in iter(lambda: src.read(1 << 22), b""):
                    digest.update(block)
                    dst.write(block)
            if digest.hexdigest() != expected:
                raise ModelFormatError(
                    f"{source}: checksum mismatch for {name}: the model is corrupt or was "
                    "modified; refusing to load it"
                )
        (tmp / "manifest.json").write_bytes(manifest_bytes)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_unused(root: Path, keep: str) -> None:
    """Remove the node's copies of other models that no worker holds."""
    for lock in root.glob("*.use"):
        sha = lock.stem
        if sha == keep:
            continue
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a worker still ranks with it
            shutil.rmtree(root / sha, ignore_errors=True)
            for kept in root.glob(f"{sha}.capacity-*.npy"):
                kept.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)


def node_model_dir(model_dir: str | os.PathLike, sha: str) -> Path:
    """This node's verified copy of ``model_dir`` (whose manifest has SHA-256 ``sha``), made
    by the first worker that asks and reused by the others; the calling worker holds it in use
    until it exits."""
    root = _cache_root()
    target = root / sha
    with open(root / f"{sha}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one copier per node; the others wait, then reuse
        made = False
        if not (target / "manifest.json").is_file():
            _copy_verified(Path(model_dir), target, sha)
            made = True
            logger.info("verified and copied %s to %s", model_dir, target)
        if sha not in _IN_USE:
            use = open(root / f"{sha}.use", "a+")  # noqa: SIM115 (held while the worker lives)
            fcntl.flock(use, fcntl.LOCK_SH)
            _IN_USE[sha] = use
        if made:
            _remove_unused(root, sha)
    return target


def worker_model(model_dir: str, sha: str) -> IntroductionRecommender:
    """The model of ``model_dir`` in this Python worker: the node's verified copy, its arrays
    memory-mapped, loaded once per worker."""
    key = (model_dir, sha)
    model = _WORKER_MODELS.get(key)
    if model is None:
        _WORKER_MODELS.clear()  # one model per worker at a time
        local = node_model_dir(model_dir, sha)
        model = load_model(local, mmap=True, verify=False)  # verified when copied
        _WORKER_MODELS[key] = model
    return model


def node_capacity(model_dir: str, sha: str, n_slates: int, k: int) -> np.ndarray:
    """(n,) int64 capacity of every member for a batch of ``n_slates`` slates of ``k`` (the
    model's :meth:`~recsys.IntroductionRecommender.slate_capacity`), made once per node and
    kept beside the node's copy.

    Spark ends a Python worker that has been idle for a minute, as the workers are during the
    assignment's rounds (they run in the JVM); a worker started for a later step then reads
    this array instead of loading the model again (about 25 s at a million members here).
    """
    node_model_dir(model_dir, sha)  # the verified copy, and this worker's hold on it
    path = _cache_root() / f"{sha}.capacity-{int(n_slates)}-{int(k)}.npy"
    if path.is_file():
        capacity = np.load(path, allow_pickle=False)
        if capacity.ndim == 1 and capacity.dtype == np.int64:
            return capacity
    model = worker_model(model_dir, sha)
    capacity = np.asarray(
        model.slate_capacity(model.network_, n_slates=n_slates, k=k), dtype=np.int64
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, capacity)
    os.replace(tmp, path)
    return capacity


def node_tiebreak(model_dir: str, sha: str) -> np.ndarray:
    """(n,) the model's :meth:`~recsys.IntroductionRecommender.floor_tiebreak`, for the one task
    that assigns the least-exposed places."""
    return np.asarray(worker_model(model_dir, sha).floor_tiebreak(), dtype=np.float64)
