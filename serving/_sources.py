"""Model sources: where a served model comes from, how to tell a new version, how to fetch one.

A :class:`DirectorySource` is a saved-model directory (a new version is a changed
``manifest.json``); an :class:`MlflowSource` is an MLflow model URI (``models:/NAME@ALIAS``,
``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH``; an alias is re-resolved on every poll). Both
fetch a private copy of one version for :func:`recsys.load_model` to verify and read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from recsys import ModelFormatError, read_model_manifest

__all__ = ["DirectorySource", "MlflowSource", "open_source", "sha256_file"]

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))/?$")


class DirectorySource:
    """A saved-model directory; a new version is a changed ``manifest.json`` (checked by stat, then
    SHA-256).

    The directory may be a link to its current version (what :func:`recsys.save_model` and
    ``recsys train`` publish): it is resolved once per poll and every file read from there.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.label = str(self.path)

    def fingerprint(self) -> Any:
        try:
            root = self.path.resolve()
            st = (root / "manifest.json").stat()
        except (OSError, RuntimeError):  # RuntimeError: a link loop
            return None
        # ctime too: a restored copy (cp -a) keeps mtime and size and may reuse a freed inode,
        # but its ctime is the moment it was written. (So fetch never links the manifest: a new
        # link would change its ctime, and the same version would look new at every poll.)
        return (str(root), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def fetch(self, workdir: Path) -> tuple[Path, str | None]:
        """A private snapshot of one version: the manifest copied, the regular files it lists
        hard-linked (else copied); nothing else, and never through a link.

        Loading verifies the checksums and then reads the files again: from the live directory,
        a new version published in between could mix two versions. The snapshot is one version
        (or fails its checksums and is retried when the source changes).
        """
        try:
            root = self.path.resolve()
        except (OSError, RuntimeError) as err:
            raise ModelFormatError(f"{self.path}: cannot be resolved ({err})") from None
        if not root.is_dir():
            raise ModelFormatError(f"{self.path}: no model directory there")
        manifest = read_model_manifest(root)  # checked: plain names, size-capped
        target = workdir / "model"
        target.mkdir()
        try:
            shutil.copyfile(root / "manifest.json", target / "manifest.json")
            for name in manifest["files"]:
                source = root / name
                mode = source.lstat().st_mode
                if not stat.S_ISREG(mode):
                    kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                    raise ModelFormatError(
                        f"{self.path}/{name}: is {kind}; a model directory holds only regular "
                        "files"
                    )
                _link_or_copy(source, target / name)
        except FileNotFoundError as err:
            name = Path(err.filename or "?").name
            raise ModelFormatError(
                f"{self.path}/{name}: listed in the manifest but missing"
            ) from None
        except OSError as err:
            raise ModelFormatError(
                f"{self.path}: could not read the model directory ({err.strerror})"
            ) from None
        return target, None


class MlflowSource:
    """An MLflow model URI, downloaded into a temporary directory; an alias is re-resolved on every
    poll.
    """

    def __init__(self, uri: str):
        self.uri = uri
        self.label = uri
        match = _MODELS_URI.match(uri)
        self.name = match["name"] if match else None
        self.alias = match["alias"] if match else None
        self.version = match["version"] if match else None

    def _resolve_version(self) -> str | None:
        if self.name is None:
            return None
        if self.alias is None:
            return self.version
        from mlflow import MlflowClient

        return str(MlflowClient().get_model_version_by_alias(self.name, self.alias).version)

    def fingerprint(self) -> Any:
        # an alias moves: its version is the fingerprint; a fixed URI never changes
        return self._resolve_version() if self.alias is not None else self.uri

    def fetch(self, workdir: Path) -> tuple[Path, str | None]:
        import mlflow.artifacts

        os.environ.setdefault(
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
        )  # a service log, not a terminal
        version = self._resolve_version()
        # download the resolved version, not the alias: the alias may move while we download
        uri = (
            f"models:/{self.name}/{version}"
            if self.name is not None and version is not None
            else self.uri
        )
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(workdir)))
        return _find_model_dir(local, self.uri), (
            f"{self.name}/{version}" if self.name and version else None
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    # save_model never rewrites a file in place (it publishes a new directory), so a hard link
    # keeps this version's bytes at no cost; across file systems, copy (never following a link)
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _find_model_dir(root: Path, label: str) -> Path:
    """The saved-model directory inside a downloaded tree: the shallowest one holding
    ``manifest.json``.
    """
    if (root / "manifest.json").is_file():
        return root
    found = sorted(root.rglob("manifest.json"), key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise ModelFormatError(
            f"{label}: no saved Plus One model (a directory with manifest.json) inside the "
            "downloaded artifacts"
        )
    return found[0].parent


def _is_mlflow_uri(source: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", source)) and not re.match(
        r"^[A-Za-z]:[\\/]", source
    )


def open_source(source: str | os.PathLike) -> DirectorySource | MlflowSource:
    """The source ``source`` names: an MLflow model URI, else a directory (a path or
    ``file://``).
    """
    text = os.fspath(source)
    if text.startswith("file://"):
        return DirectorySource(text[len("file://") :])
    if _is_mlflow_uri(text):
        return MlflowSource(text)
    return DirectorySource(text)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
