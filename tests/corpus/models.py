"""Tampered model directories, as data: what a careless copy or a hostile hand makes of a saved
model. Most recompute the checksums in the manifest (the manifest guards against corruption,
not against someone who can write it), so only the loader's own checks stand in the way.

A case is ``(id, tamper, file, fragment)``: ``tamper`` changes a copy of a saved model; the
refusal must be a ModelFormatError naming ``MODEL/file`` (``MODEL`` alone when ``file`` is
empty) and containing ``fragment`` — from ``load_model``, ``recsys rank`` (exit 2) and the
service.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Tamper = Callable[[Path], None]


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text())


def _write_manifest(root: Path, manifest: Any) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest))


def _rehash(root: Path, name: str) -> None:
    manifest = _manifest(root)
    manifest["files"][name] = hashlib.sha256((root / name).read_bytes()).hexdigest()
    _write_manifest(root, manifest)


def manifest(change: Callable[[dict[str, Any]], Any]) -> Tamper:
    """Edit the parsed manifest (``change`` may return a replacement)."""

    def tamper(root: Path) -> None:
        data = _manifest(root)
        out = change(data)
        _write_manifest(root, data if out is None else out)

    return tamper


def manifest_text(text: bytes) -> Tamper:
    def tamper(root: Path) -> None:
        (root / "manifest.json").write_bytes(text)

    return tamper


def array(name: str, change: Callable[[np.ndarray], np.ndarray], *, rehash: bool = True) -> Tamper:
    def tamper(root: Path) -> None:
        values = change(np.load(root / name, allow_pickle=False))
        with open(root / name, "wb") as fh:
            np.save(fh, values, allow_pickle=True)
        if rehash:
            _rehash(root, name)

    return tamper


def table(name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Tamper:
    def tamper(root: Path) -> None:
        buffer = io.BytesIO()
        change(pd.read_parquet(root / name)).to_parquet(buffer, index=False)
        (root / name).write_bytes(buffer.getvalue())
        _rehash(root, name)

    return tamper


def json_file(name: str, change: Callable[[dict[str, Any]], None]) -> Tamper:
    def tamper(root: Path) -> None:
        data = json.loads((root / name).read_text())
        change(data)
        (root / name).write_text(json.dumps(data))
        _rehash(root, name)

    return tamper


def list_file(name: str, digest_of: str | None = None) -> Tamper:
    """List ``name`` in the manifest, with the checksum of what it names (or of ``digest_of``)."""

    def tamper(root: Path) -> None:
        data = _manifest(root)
        source = Path(digest_of) if digest_of else root / name
        try:
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            digest = "0" * 64
        data["files"][name] = digest
        _write_manifest(root, data)

    return tamper


def symlink(name: str, *, to_directory: bool = False) -> Tamper:
    """Move ``name`` out of the model and leave a link to it (checksum still right)."""

    def tamper(root: Path) -> None:
        outside = root.parent / ("elsewhere" if to_directory else f"outside-{name}")
        if to_directory:
            outside.mkdir(exist_ok=True)
            (root / name).unlink()
        else:
            (root / name).rename(outside)
        os.symlink(outside, root / name)

    return tamper


def special(name: str, kind: str) -> Tamper:
    def tamper(root: Path) -> None:
        (root / name).unlink()
        if kind == "fifo":
            os.mkfifo(root / name)
        elif kind == "directory":
            (root / name).mkdir()
        elif kind == "loop":
            os.symlink(root / name, root / name)

    return tamper


def remove(name: str) -> Tamper:
    def tamper(root: Path) -> None:
        (root / name).unlink()

    return tamper


def flip_byte(name: str) -> Tamper:
    def tamper(root: Path) -> None:
        data = bytearray((root / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (root / name).write_bytes(bytes(data))

    return tamper


def both(*tampers: Tamper) -> Tamper:
    def tamper(root: Path) -> None:
        for one in tampers:
            one(root)

    return tamper


def _objects(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [list(row) for row in values]
    return out


def _first_index_out_of_range(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values[0] = 10_000
    return values


def _reverse_first_row(values: np.ndarray) -> np.ndarray:
    """The indices reversed: rows with two or more entries are no longer sorted."""
    return values[::-1].copy()


def _truncate(name: str) -> Tamper:
    def tamper(root: Path) -> None:
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[: len(data) - 8])

    return tamper


def _unknown_param(m: dict[str, Any]) -> None:
    m["params"]["run_this"] = "rm -rf /"


def _huge_pool(m: dict[str, Any]) -> None:
    m["params"]["pool_size"] = 10**9


def _short_coef(a: dict[str, Any]) -> None:
    a["coef"] = a["coef"][:3]


def _bad_pairs(a: dict[str, Any]) -> None:
    a["pairs"] = [[999, 999]] * len(a["pairs"])


TAMPERED = [
    # names that leave the directory, and what is not a regular file
    (
        "parent-path",
        list_file("../../../../etc/passwd", "/etc/passwd"),
        "manifest.json",
        "not a plain file name",
    ),
    (
        "absolute-path",
        list_file("/etc/passwd", "/etc/passwd"),
        "manifest.json",
        "not a plain file name",
    ),
    (
        "hidden-subpath",
        list_file("sub/../members.parquet"),
        "manifest.json",
        "not a plain file name",
    ),
    ("symlink-file", symlink("member_factors.npy"), "member_factors.npy", "symbolic link"),
    (
        "symlink-directory",
        symlink("interests.parquet", to_directory=True),
        "interests.parquet",
        "symbolic link",
    ),
    ("symlink-loop", special("acceptance.json", "loop"), "acceptance.json", "symbolic link"),
    ("fifo", special("member_factors.npy", "fifo"), "member_factors.npy", "not a regular file"),
    (
        "directory",
        special("members.parquet", "directory"),
        "members.parquet",
        "not a regular file",
    ),
    # the manifest itself
    ("manifest-not-json", manifest_text(b"{not json"), "manifest.json", "unreadable manifest"),
    (
        "manifest-binary",
        manifest_text(b"\xff\xfe\x00\x01" * 8),
        "manifest.json",
        "unreadable manifest",
    ),
    ("manifest-a-list", manifest(lambda m: [m]), "manifest.json", "JSON object"),
    ("manifest-no-files", manifest(lambda m: m.pop("files") and None), "manifest.json", "'files'"),
    (
        "manifest-files-a-list",
        manifest(lambda m: m.update(files=list(m["files"]))),
        "manifest.json",
        "'files'",
    ),
    (
        "manifest-bad-digest",
        manifest(lambda m: m["files"].update({"members.parquet": "abc"})),
        "manifest.json",
        "not a SHA-256",
    ),
    (
        "manifest-unlists-file",
        manifest(lambda m: m["files"].pop("acceptance.json") and None),
        "manifest.json",
        "does not list acceptance.json",
    ),
    (
        "manifest-n-members-text",
        manifest(lambda m: m.update(n_members="30")),
        "manifest.json",
        "n_members",
    ),
    (
        "manifest-other-format",
        manifest(lambda m: m.update(format="pickle")),
        "manifest.json",
        "not a Plus One model",
    ),
    (
        "manifest-future-version",
        manifest(lambda m: m.update(format_version=99)),
        "manifest.json",
        "format version",
    ),
    (
        "manifest-params-a-list",
        manifest(lambda m: m.update(params=[1, 2])),
        "manifest.json",
        "'params'",
    ),
    ("manifest-unknown-param", manifest(_unknown_param), "manifest.json", "run_this"),
    ("manifest-huge-pool", manifest(_huge_pool), "manifest.json", "pool_size"),
    (
        "manifest-too-large",
        manifest_text(b'{"format": "plusone-model", "pad": "' + b"x" * (17 << 20) + b'"}'),
        "manifest.json",
        "larger than 16 MB",
    ),
    # checksums
    (
        "flipped-byte",
        flip_byte("member_factors.npy"),
        "",
        "checksum mismatch for member_factors.npy",
    ),
    (
        "missing-file",
        remove("adjacency.indptr.npy"),
        "adjacency.indptr.npy",
        "listed in the manifest but missing",
    ),
    # arrays that load, with recomputed checksums
    ("object-array", array("member_factors.npy", _objects), "member_factors.npy", "malformed"),
    ("factors-short", array("member_factors.npy", lambda a: a[:-1]), "member_factors.npy", "rows"),
    (
        "factors-nan",
        array("member_factors.npy", lambda a: a * np.nan),
        "member_factors.npy",
        "not a finite number",
    ),
    (
        "factors-text",
        array("member_factors.npy", lambda a: a.astype(str)),
        "member_factors.npy",
        "not floats",
    ),
    (
        "factors-1d",
        array("member_factors.npy", lambda a: a.ravel()),
        "member_factors.npy",
        "dimensions",
    ),
    (
        "adjacency-index-out-of-range",
        array("adjacency.indices.npy", _first_index_out_of_range),
        "adjacency.indptr.npy",
        "outside",
    ),
    (
        "adjacency-wrong-shape",
        array("adjacency.indptr.npy", lambda a: a[:-1]),
        "adjacency.indptr.npy",
        "shape",
    ),
    (
        "adjacency-indptr-floats",
        array("adjacency.indptr.npy", lambda a: a.astype(float)),
        "adjacency.indptr.npy",
        "indptr",
    ),
    (
        "adjacency-unsorted-row",
        array("adjacency.indices.npy", _reverse_first_row),
        "adjacency.indptr.npy",
        "not sorted",
    ),
    (
        "interests-negative",
        array("member_interests.data.npy", lambda a: -np.abs(a)),
        "member_interests.data.npy",
        "negative",
    ),
    (
        "connections-not-the-graph",
        array("connections.npy", lambda a: a[::-1, ::-1]),
        "connections.npy",
        "a < b",
    ),
    (
        "connections-short",
        array("connections.npy", lambda a: a[:-1]),
        "connections.npy",
        "connections",
    ),
    (
        "not-an-npy",
        both(flip_byte("adjacency.indices.npy"), lambda r: _rehash(r, "adjacency.indices.npy")),
        "adjacency.indptr.npy",
        "malformed",
    ),
    (
        "npy-header-lies",
        both(_truncate("member_factors.npy"), lambda r: _rehash(r, "member_factors.npy")),
        "member_factors.npy",
        "malformed",
    ),
    (
        "members-no-community",
        table("members.parquet", lambda f: f.drop(columns=["community"])),
        "members.parquet",
        "'community'",
    ),
    (
        "members-duplicate",
        table("members.parquet", lambda f: f.assign(member_id=["m00"] * len(f))),
        "members.parquet",
        "duplicate",
    ),
    ("members-short", table("members.parquet", lambda f: f.iloc[:-1]), "members.parquet", "rows"),
    (
        "members-negative-community",
        table("members.parquet", lambda f: f.assign(community=-1)),
        "members.parquet",
        "negative",
    ),
    (
        "interests-wrong-count",
        table("interests.parquet", lambda f: f.iloc[:-1]),
        "interests.parquet",
        "interest",
    ),
    (
        "acceptance-short-coef",
        json_file("acceptance.json", _short_coef),
        "acceptance.json",
        "malformed",
    ),
    (
        "acceptance-bad-pairs",
        json_file("acceptance.json", _bad_pairs),
        "acceptance.json",
        "malformed",
    ),
    (
        "acceptance-other-features",
        json_file("acceptance.json", lambda a: a.update(features=["x"])),
        "acceptance.json",
        "other features",
    ),
]
