"""The saved-model format: a directory of plain arrays and tables with a checksummed manifest.

No pickles: a model is data, and loading one runs no code from it (arrays are read with
``allow_pickle=False``). Writing is atomic: everything goes to a temporary sibling directory,
which is published only once complete (:func:`recsys._io.publish_dir`: the model's path becomes
a link to the new version, swapped in one step).

A model directory is input like any other, and may have been tampered with, checksums and
all. Loading reads only regular files the manifest lists by plain name (no path, no link, no
device or pipe), verifies every one of them, and checks that what they hold fits together (the
shapes, types and ranges of every array) before a model is built: anything else is a
:class:`ModelFormatError` naming the file, never a traceback from deep inside ranking.

Since format 4 the graph, the member × interest matrix and the connections are plain ``.npy``
arrays, so that ``load_model(mmap=True)`` can memory-map them (with the embeddings and the
search index): the processes of a machine that map the same files share one copy in the page
cache (the Spark engine's workers; a ``.npz`` member cannot be mapped). A mapped array is
checked like a read one; it is mapped from the very file descriptor whose bytes were hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from recsys._acceptance import acceptance_from_dict
from recsys._features import FEATURE_NAMES
from recsys._io import make_staging_dir, publish_dir
from recsys._migrations import FORMAT_VERSION, migrate
from recsys._model import IntroductionRecommender
from recsys._state import FittedState, RerankSetting
from recsys.data import Network

__all__ = [
    "FORMAT_VERSION",
    "ModelFormatError",
    "load_model",
    "read_model_manifest",
    "save_model",
    "verify_model_dir",
    "write_model_dir",
]

logger = logging.getLogger(__name__)

FORMAT_NAME = "plusone-model"
#: Member columns a saved model keeps: what ranking needs, never a sensitive attribute.
OPERATIONAL_COLUMNS = ("open_to_intros", "plus_one", "capacity", "pledge_per_month")
#: Files every saved model holds, and those it may.
REQUIRED_FILES = (
    "members.parquet",
    "interests.parquet",
    "member_factors.npy",
    "acceptance.json",
)
OPTIONAL_FILES = ("als_index.npy", "bound_groups.npy", "community_ensemble.npy")
#: The graph (``adjacency``, ``connections``: each once, the upper triangle) and the member ×
#: interest matrix as plain arrays, since format 4 (CSR parts as scipy holds them).
ARRAY_FILES = (
    "adjacency.indptr.npy",
    "adjacency.indices.npy",
    "adjacency.data.npy",
    "member_interests.indptr.npy",
    "member_interests.indices.npy",
    "member_interests.data.npy",
    "connections.npy",
)
#: The same two matrices zipped, in formats 1 and 2 (still read, never mapped).
ZIPPED_FILES = ("adjacency.npz", "member_interests.npz")
#: The arrays ``load_model(mmap=True)`` maps instead of reading.
MAPPED_FILES = (
    *ARRAY_FILES,
    "member_factors.npy",
    "als_index.npy",
    "bound_groups.npy",
    "community_ensemble.npy",
)
#: A manifest is a few kB (its config and tuning report); one larger than this is not ours.
MAX_MANIFEST_BYTES = 16 << 20
#: What a listed file may be called: a plain name in the model directory, nothing else.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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


def _save_csr_arrays(root: Path, name: str, matrix: sp.csr_matrix) -> None:
    """``NAME.indptr.npy``, ``NAME.indices.npy``, ``NAME.data.npy``: plain arrays that can be
    memory-mapped, indices sorted within rows, in the index dtypes scipy holds (so that
    building the matrix from them copies nothing)."""
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    np.save(root / f"{name}.indptr.npy", matrix.indptr)
    np.save(root / f"{name}.indices.npy", matrix.indices)
    np.save(root / f"{name}.data.npy", np.asarray(matrix.data, dtype=np.float32))


def _upper_pairs(adjacency: sp.csr_matrix) -> np.ndarray:
    """(E, 2) int32 connections of a symmetric adjacency, each once (the upper triangle)."""
    upper = sp.triu(adjacency, k=1).tocoo()
    return np.column_stack([upper.row, upper.col]).astype(np.int32)


def _load_csr(source: io.BytesIO, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix of ``shape`` from a zipped one (formats 1 and 2), checked as
    :func:`_checked_csr` checks it."""
    with np.load(source, allow_pickle=False) as z:
        for name in ("indptr", "indices", "shape"):
            if name not in z.files:
                raise ValueError(f"no array {name!r}")
        stored = _array(z["shape"], "shape", kind="i", ndim=1)
        if tuple(int(x) for x in stored) != shape:
            raise ValueError(f"shape is {tuple(stored.tolist())}, the model needs {shape}")
        indptr, indices = z["indptr"], z["indices"]
        data = z["data"] if "data" in z.files else None
    return _checked_csr(indptr, indices, data, shape, sort=True)


def _checked_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray | None,
    shape: tuple[int, int],
    *,
    sort: bool = False,
) -> sp.csr_matrix:
    """A CSR matrix of ``shape`` whose structure is checked in full (indptr monotone from 0 to
    nnz, indices in range and sorted within rows, or sorted here with ``sort``), with finite
    float data (``None``: ones).

    Arrays already in the index dtype scipy picks are used as they are, so that mapped arrays
    stay mapped (format 4 stores them so, sorted); others are converted."""
    indptr = _array(indptr, "indptr", kind="i", ndim=1)
    indices = _array(indices, "indices", kind="i", ndim=1)
    if data is None:
        data = np.ones(len(indices), dtype=np.float32)
    data = _array(data, "data", kind="f", ndim=1)
    if len(indptr) != shape[0] + 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        raise ValueError("indptr does not fit the shape and the number of entries")
    if len(data) != len(indices) or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr is not increasing, or data and indices differ in length")
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        raise ValueError(f"an index is outside 0..{shape[1] - 1}")
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)
    if not matrix.has_sorted_indices:
        if not sort:  # format 4 saves them sorted; mapped arrays are not ours to sort
            raise ValueError("the indices of a row are not sorted")
        matrix.sort_indices()
    return matrix


def _array(values: Any, name: str, *, kind: str, ndim: int) -> np.ndarray:
    """``values`` if it is an array of ``ndim`` dimensions whose dtype kind is in ``kind``
    (``i`` integers, ``u`` unsigned, ``f`` floats, which must be finite)."""
    values = np.asarray(values)
    if values.dtype.kind not in kind + ("u" if "i" in kind else ""):
        raise ValueError(f"{name} holds {values.dtype} values, not {_KINDS[kind[0]]}")
    if values.ndim != ndim:
        raise ValueError(f"{name} has {values.ndim} dimensions, not {ndim}")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"{name} holds a value that is not a finite number")
    return values


_KINDS = {"i": "integers", "u": "unsigned bytes", "f": "floats"}


def write_model_dir(
    model: IntroductionRecommender,
    path: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` into the new directory ``path`` (which must not exist), flushed to disk.

    Nothing is published: this is the writing half of :func:`save_model`, for a job that
    publishes a whole output at once. Returns the path.
    """
    check_is_fitted(model)
    target = Path(path)
    target.mkdir(parents=True)
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
    members.to_parquet(target / "members.parquet", index=False)
    pd.DataFrame({"interest": net.interest_names.astype(str)}).to_parquet(
        target / "interests.parquet", index=False
    )
    # plain .npy, not .npz: load_model(mmap=True) maps them, so the processes of a machine
    # share one copy (a Spark node's workers)
    _save_csr_arrays(target, "adjacency", net.adjacency)
    _save_csr_arrays(target, "member_interests", net.member_interests)
    np.save(target / "connections.npy", _upper_pairs(net.adjacency))
    np.save(target / "member_factors.npy", state.member_factors)
    als = model.sources_.get("als")  # the index built from the state's, or afresh
    index_bytes = als.index_bytes() if als is not None else None
    if index_bytes is not None:
        np.save(target / "als_index.npy", np.asarray(index_bytes, dtype=np.uint8))
    (target / "acceptance.json").write_text(json.dumps(state.acceptance.to_dict(), indent=2))
    if state.community_ensemble is not None:
        np.save(target / "community_ensemble.npy", np.asarray(state.community_ensemble, np.int32))
    if state.bound_groups is not None:  # opted in: bare group codes, no values or labels
        np.save(target / "bound_groups.npy", np.asarray(state.bound_groups, dtype=np.int16))
    files = {p.name: _sha256(p) for p in sorted(target.iterdir())}
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
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    for file in target.iterdir():  # on disk before anything names it
        with open(file, "rb") as fh:
            os.fsync(fh.fileno())
    return target


def save_model(
    model: IntroductionRecommender,
    path: str | os.PathLike,
    *,
    config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``path``, replacing what is there in one atomic step.

    The model is written complete into a temporary directory beside ``path``, then published
    (:func:`recsys._io.publish_dir`): ``path`` becomes a link to that version, swapped in one
    rename, so a reader polling ``path/manifest.json`` never finds it missing and never reads
    two versions mixed; the previous version stays until the next save. A save killed midway
    leaves the old model and a temporary directory that the next save removes.

    Returns the path. The manifest records the format version, the config that produced the
    model, the estimator's parameters and the SHA-256 of every file.
    """
    target = Path(path)
    check_is_fitted(model)
    staged = make_staging_dir(target)
    try:
        write_model_dir(model, staged / "model", config=config, metadata=metadata)
        publish_dir(staged / "model", target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    logger.info("saved model to %s", target)
    return target


# ------------------------------------------------------------------------------------- reading
class _ModelDir:
    """A model directory: resolved once (``root``, where every file is read from) and named in
    messages as the caller gave it (``shown``), not by a private version path."""

    def __init__(self, path: str | os.PathLike):
        self.shown = Path(path)
        self.root = self.shown.resolve()

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def __str__(self) -> str:
        return str(self.shown)


def _where(root: _ModelDir, name: str) -> str:
    return f"{root.shown}/{name}"


def _open_regular(root: _ModelDir, name: str) -> int:
    """A descriptor of the regular file ``root/name``: never through a link, never a device,
    pipe or directory (opening one of those could block, or read something that is not the
    model's)."""
    path, shown = root / name, _where(root, name)
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        raise ModelFormatError(f"{shown}: listed in the manifest but missing") from None
    except OSError as err:
        if path.is_symlink():
            raise ModelFormatError(
                f"{shown}: is a symbolic link; a model directory holds only regular files"
            ) from None
        raise ModelFormatError(f"{shown}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelFormatError(f"{shown}: is not a regular file; refusing to read it")
    return fd


def _read_regular(root: _ModelDir, name: str, *, limit: int | None = None) -> bytes:
    fd = _open_regular(root, name)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ModelFormatError(
            f"{_where(root, name)}: larger than {limit >> 20} MB; not a Plus One manifest"
        )
    return data


def _read_manifest(root: _ModelDir) -> dict[str, Any]:
    where = _where(root, "manifest.json")
    if not root.root.is_dir():
        raise ModelFormatError(f"{root}: no model directory there")
    if not os.path.lexists(root / "manifest.json"):
        raise ModelFormatError(f"{root}: not a saved model (no manifest.json)")
    data = _read_regular(root, "manifest.json", limit=MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFormatError(f"{where}: unreadable manifest ({err})") from None
    if not isinstance(manifest, dict):
        raise ModelFormatError(
            f"{where}: a manifest is a JSON object, got {type(manifest).__name__}"
        )
    if manifest.get("format") != FORMAT_NAME:
        shown = manifest.get("format")
        shown = shown if isinstance(shown, str) and len(shown) < 64 else type(shown).__name__
        raise ModelFormatError(f"{where}: not a Plus One model (format {shown!r})")
    try:
        manifest = migrate(manifest)
    except (ValueError, TypeError, AttributeError) as err:
        raise ModelFormatError(f"{where}: {err}") from None
    _check_manifest(root, manifest)
    return manifest


def _check_manifest(root: _ModelDir, manifest: dict[str, Any]) -> None:
    """The manifest's own fields: types and ranges, and file names that stay in the directory."""
    where = _where(root, "manifest.json")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ModelFormatError(f"{where}: 'files' must map file names to SHA-256 checksums")
    for name, digest in files.items():
        if not _PLAIN_NAME.match(name) or name == "manifest.json":
            raise ModelFormatError(
                f"{where}: lists {name[:80]!r}, which is not a plain file name in the model "
                "directory; refusing to read it"
            )
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ModelFormatError(f"{where}: the checksum of {name} is not a SHA-256 digest")
    layout = ZIPPED_FILES if "adjacency.npz" in files else ARRAY_FILES
    missing = [name for name in (*REQUIRED_FILES, *layout) if name not in files]
    if missing:
        raise ModelFormatError(f"{where}: does not list {', '.join(missing)}")
    for key in ("n_members", "n_interests"):
        value = manifest.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ModelFormatError(f"{where}: {key} must be a whole number, got {value!r}")
    if manifest["n_members"] < 1:
        raise ModelFormatError(f"{where}: the model has no members")
    for key in ("params", "rerank_params", "training"):
        if not isinstance(manifest.get(key), dict):
            raise ModelFormatError(f"{where}: {key!r} must be a JSON object")
    for key in ("rerank_report", "config", "metadata"):
        if not isinstance(manifest.get(key, {}), dict):
            raise ModelFormatError(f"{where}: {key!r} must be a JSON object")


#: The files this build reads (others listed are hashed, never parsed).
_KNOWN_FILES = frozenset((*REQUIRED_FILES, *OPTIONAL_FILES, *ARRAY_FILES, *ZIPPED_FILES))


def _hashed(fh, *, keep: bool) -> tuple[str, bytes | None]:
    """SHA-256 of an open file, and its bytes if ``keep``."""
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
        if keep:
            chunks.append(block)
    return digest.hexdigest(), (b"".join(chunks) if keep else None)


def _hash_regular(root: _ModelDir, name: str) -> tuple[str, bytes | None]:
    """SHA-256 of a listed file, and its bytes when it is one this build reads."""
    with os.fdopen(_open_regular(root, name), "rb") as fh:
        return _hashed(fh, keep=name in _KNOWN_FILES)


def _mapped_npy(fh) -> np.ndarray:
    """The ``.npy`` array of an open file, memory-mapped read-only from that descriptor (the
    file whose bytes were hashed, even if its name is replaced since); never an array of
    Python objects."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy version {version} is not one this build maps")
    if dtype.hasobject:
        raise ValueError("the array holds Python objects (pickles); refusing it")
    offset = fh.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    size = os.fstat(fh.fileno()).st_size
    if size != offset + nbytes:
        raise ValueError(f"the header says {nbytes} bytes of data, the file holds {size - offset}")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    mapped = np.memmap(
        fh, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C", offset=offset
    )
    return np.asarray(mapped)  # a plain read-only view; the mapping lives as its base


def _verified_files(
    root: _ModelDir, manifest: dict[str, Any], *, mmap: bool = False, verify: bool = True
) -> dict[str, bytes | np.ndarray]:
    """Every listed file checked against its checksum; the bytes of those this build reads (so
    that what is parsed is exactly what was verified, even if the directory changes), or with
    ``mmap`` the arrays of :data:`MAPPED_FILES` mapped from the descriptor that was hashed.
    ``verify=False`` skips the hashing (every other check stays)."""
    read: dict[str, bytes | np.ndarray] = {}
    for name, expected in manifest["files"].items():
        mapped = mmap and name in MAPPED_FILES
        keep = name in _KNOWN_FILES and not mapped
        with os.fdopen(_open_regular(root, name), "rb") as fh:
            if verify or keep:
                actual, data = _hashed(fh, keep=keep)
                if verify and actual != expected:
                    raise ModelFormatError(
                        f"{root}: checksum mismatch for {name}: the model is corrupt or was "
                        "modified; refusing to load it"
                    )
                if data is not None:
                    read[name] = data
            if mapped:
                fh.seek(0)
                with _parsing(root, name):
                    read[name] = _mapped_npy(fh)
    return read


def read_model_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A model directory's manifest, checked as :func:`load_model` checks it (a plain JSON
    object of this format, at most 16 MB, listing the required files by plain names with
    SHA-256 checksums), without reading the files it lists; raises :class:`ModelFormatError`.
    """
    return _read_manifest(_ModelDir(path))


def verify_model_dir(path: str | os.PathLike) -> dict[str, Any]:
    """Check a model directory's manifest and the checksum of every file it lists; return the
    manifest or raise :class:`ModelFormatError`.

    Refuses what :func:`load_model` refuses: listed names that are not plain file names in the
    directory, links, special files, a missing or malformed manifest.
    """
    root = _ModelDir(path)
    manifest = _read_manifest(root)
    for name, expected in manifest["files"].items():
        if _hash_regular(root, name)[0] != expected:
            raise ModelFormatError(
                f"{root}: checksum mismatch for {name}: the model is corrupt or was modified; "
                "refusing to load it"
            )
    return manifest


@contextlib.contextmanager
def _parsing(root: _ModelDir, name: str) -> Iterator[None]:
    """Whatever goes wrong reading ``name`` becomes one ModelFormatError naming it."""
    try:
        yield
    except ModelFormatError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,
        EOFError,
        OSError,
        zipfile.BadZipFile,
        pa.ArrowException,
    ) as err:
        text = str(err) or type(err).__name__
        raise ModelFormatError(f"{_where(root, name)}: malformed ({text[:300]})") from None


def load_model(
    path: str | os.PathLike, *, mmap: bool = False, verify: bool = True
) -> IntroductionRecommender:
    """Load a saved model after verifying its checksums and the shape of what it holds.

    ``path`` is resolved once (a published model is a link to its current version), and every
    file is read from that version.

    Parameters
    ----------
    path : directory of a saved model
    mmap : bool
        Memory-map the large arrays (the graph, the member × interest matrix, the embeddings,
        the search index) read-only instead of reading them into this process: processes that
        load the same files share one copy in the page cache. Mapped arrays are checked as read
        ones are; models of format 2 or older (zipped) are read into memory. A mapped file must
        not be rewritten in place while in use: ``save_model`` never does (it publishes a new
        directory), and a directory others can write should not be mapped.
    verify : bool
        Check every file against the manifest's SHA-256 (the default). ``False`` only for a
        directory that whoever made it verified and no one else can write (the Spark engine's
        node-local copy, verified once per node as it is copied); every other check stays.

    Raises
    ------
    ModelFormatError
        No model there, a manifest that is not this format's, a listed file that is missing, a
        link, a special file or outside the directory, a checksum that does not match, or
        contents that do not fit together; the message names the file.

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
    root = _ModelDir(path)
    manifest = _read_manifest(root)
    files = _verified_files(root, manifest, mmap=mmap, verify=verify)

    def read(name: str) -> io.BytesIO:
        return io.BytesIO(files[name])

    def npy(name: str) -> np.ndarray:  # mapped already, or parsed from the verified bytes
        got = files[name]
        return got if isinstance(got, np.ndarray) else np.load(read(name), allow_pickle=False)

    n, n_interests = manifest["n_members"], manifest["n_interests"]

    with _parsing(root, "members.parquet"):
        members = pd.read_parquet(read("members.parquet"))
        for column in ("member_id", "community"):
            if column not in members.columns:
                raise ValueError(f"no column {column!r}")
        if len(members) != n:
            raise ValueError(f"{len(members)} rows, the manifest says {n} members")
        member_ids = members["member_id"]
        if member_ids.isna().any() or not all(isinstance(m, str) for m in member_ids):
            raise ValueError("member_id holds a value that is not a string")
        if member_ids.duplicated().any():
            raise ValueError("member_id holds a duplicate")
        communities = _array(members["community"].to_numpy(), "community", kind="i", ndim=1)
        if communities.min() < 0:
            raise ValueError("community holds a negative number")
    with _parsing(root, "interests.parquet"):
        interests = pd.read_parquet(read("interests.parquet"))
        if "interest" not in interests.columns or len(interests) != n_interests:
            raise ValueError(f"expected one column 'interest' of {n_interests} rows")
        if not all(isinstance(i, str) for i in interests["interest"]):
            raise ValueError("interest holds a value that is not a string")
    zipped = "adjacency.npz" in files
    matrices = {}
    for name, shape in (("adjacency", (n, n)), ("member_interests", (n, n_interests))):
        if zipped:
            with _parsing(root, f"{name}.npz"):
                matrices[name] = _load_csr(read(f"{name}.npz"), shape)
            continue
        parts = {}
        for part in ("indptr", "indices", "data"):
            with _parsing(root, f"{name}.{part}.npy"):
                parts[part] = npy(f"{name}.{part}.npy")
        with _parsing(root, f"{name}.indptr.npy"):
            matrices[name] = _checked_csr(parts["indptr"], parts["indices"], parts["data"], shape)
    adjacency, member_interests = matrices["adjacency"], matrices["member_interests"]
    with _parsing(root, "adjacency.npz" if zipped else "adjacency.indices.npy"):
        if (adjacency != adjacency.T).nnz or adjacency.diagonal().any():
            raise ValueError("the adjacency matrix is not symmetric or has self-connections")
    with _parsing(root, "member_interests.npz" if zipped else "member_interests.data.npy"):
        if member_interests.nnz and member_interests.data.min() < 0:
            raise ValueError("an interest weight is negative")
    if zipped:
        connections = _upper_pairs(adjacency)
    else:
        with _parsing(root, "connections.npy"):
            connections = _array(npy("connections.npy"), "connections", kind="i", ndim=2)
            if connections.shape != (adjacency.nnz // 2, 2):
                raise ValueError(
                    f"shape {connections.shape}, the graph has {adjacency.nnz // 2} connections"
                )
            if len(connections) and (
                connections.min() < 0
                or connections.max() >= n
                or (connections[:, 0] >= connections[:, 1]).any()
            ):
                raise ValueError(f"a connection is not a pair of rows a < b in 0..{n - 1}")
            if connections.dtype != np.int32:
                connections = connections.astype(np.int32)
    with _parsing(root, "member_factors.npy"):
        factors = _array(npy("member_factors.npy"), "factors", kind="f", ndim=2)
        if factors.shape[0] != n:
            raise ValueError(f"{factors.shape[0]} rows, the model has {n} members")
    index_bytes = None
    if "als_index.npy" in files:
        with _parsing(root, "als_index.npy"):
            index_bytes = npy("als_index.npy")
            if index_bytes.dtype != np.uint8 or index_bytes.ndim != 1:
                raise ValueError("an index is a 1-d array of bytes")
    ensemble = None
    if "community_ensemble.npy" in files:
        with _parsing(root, "community_ensemble.npy"):
            ensemble = _array(
                npy("community_ensemble.npy"),
                "community labels",
                kind="i",
                ndim=2,
            )
            if (
                len(ensemble) != n
                or ensemble.shape[1] < 1
                or (ensemble.size and ensemble.min() < 0)
            ):
                raise ValueError(f"expected {n} rows of community labels of at least 0")
    bound_groups = None
    if "bound_groups.npy" in files:
        with _parsing(root, "bound_groups.npy"):
            bound_groups = _array(npy("bound_groups.npy"), "groups", kind="i", ndim=1)
            if len(bound_groups) != n or (len(bound_groups) and bound_groups.min() < 0):
                raise ValueError(f"expected {n} group codes of at least 0")
    with _parsing(root, "acceptance.json"):
        acceptance = acceptance_from_dict(json.loads(files["acceptance.json"].decode("utf-8")))
        probe = acceptance.predict_proba(np.zeros((2, len(FEATURE_NAMES))))
        if np.shape(probe) != (2,) or not np.isfinite(probe).all():
            raise ValueError("the acceptance model does not score a pair")

    attributes = members[[c for c in OPERATIONAL_COLUMNS if c in members.columns]].reset_index(
        drop=True
    )
    network = Network(
        member_ids=member_ids.to_numpy(dtype=object),
        adjacency=adjacency,
        member_interests=member_interests,
        interest_names=interests["interest"].to_numpy(dtype=object),
        attributes=attributes,
        sensitive=pd.DataFrame(index=pd.RangeIndex(n)),
        connections=connections,
        connection_times=None,
        introductions=None,
    )
    with _parsing(root, "manifest.json"):
        state = FittedState(
            network=network,
            communities=communities.astype(np.int32),
            member_factors=factors,
            als_index=index_bytes,
            acceptance=acceptance,
            rerank=RerankSetting.from_dict(manifest["rerank_params"]),
            rerank_report=manifest.get("rerank_report", {}),
            bound_groups=bound_groups,
            community_ensemble=ensemble,
            training_pairs=int(manifest["training"]["pairs"]),
            training_positives=int(manifest["training"]["positives"]),
        )
        model = IntroductionRecommender.from_state(state, manifest=manifest, **manifest["params"])
    with _parsing(root, "manifest.json"):  # a trial ranking: fail here, not on a request
        model.rank(np.zeros(1, dtype=np.int64), k=1)
    return model
