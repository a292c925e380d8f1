"""Writing files so that a reader never sees half of one: the library's one atomic write.

Everything the project writes (tables, metrics, configs, reports, slates) goes through
:func:`atomic_write`: the content goes to a temporary file next to the target, is flushed to
disk, and is renamed over the target in one step (``os.replace``). A failure or a kill before the
rename leaves the old file, or none, and the temporary file is removed. Tables go through
:func:`write_frame` on top of it.

A directory (a saved model, a job's whole output) is written complete under a temporary name and
published by :func:`publish_dir`: the target becomes a symbolic link to the new version, and
replacing that link is the one atomic step. Renaming a directory over another is not possible
while the old one has files, and moving the old one aside first leaves a moment with neither,
in which a reader polling the target fails (148 failed reads in 60,727 during 400 saves, when
``save_model`` did that).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

__all__ = [
    "TABLE_FORMATS",
    "atomic_write",
    "make_staging_dir",
    "publish_dir",
    "table_format",
    "write_frame",
]

#: The file formats of a table, by suffix.
TABLE_FORMATS = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}

TableFormat = Literal["csv", "csv.gz", "parquet"]


def atomic_write(path: str | os.PathLike, content: str | bytes | Callable[[Path], object]) -> Path:
    """Write ``content`` to ``path`` atomically and return the path.

    Parameters
    ----------
    path : str or PathLike
        The target; its directory is created if needed.
    content : str, bytes or callable
        Text (written as UTF-8), bytes, or a function that writes the file it is given (a
        temporary path in the target's directory), e.g. ``lambda p: frame.to_parquet(p)``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = atomic_write(f"{tmp}/note.txt", "hello")
    ...     path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('hello', ['note.txt'])
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def table_format(path: str | os.PathLike) -> TableFormat:
    """The table format a file name asks for (``.csv``, ``.csv.gz`` or ``.parquet``)."""
    name = Path(path).name
    for fmt, suffix in sorted(TABLE_FORMATS.items(), key=lambda item: -len(item[1])):
        if name.endswith(suffix):
            return fmt  # type: ignore[return-value]
    raise ValueError(f"{path}: a table file must end in .csv, .csv.gz or .parquet")


def write_frame(
    frame: pd.DataFrame, path: str | os.PathLike, *, fmt: TableFormat | None = None
) -> Path:
    """Write ``frame`` (without its index) as CSV, gzipped CSV or Parquet, atomically.

    ``fmt`` defaults to what the file name says. CSV goes through Arrow's writer (about ten
    times faster than ``DataFrame.to_csv`` on tens of millions of rows); gzip runs at level 1
    with no name or time in its header, so the same table gives the same bytes (4x faster than
    level 6, for files a quarter larger).
    """
    fmt = table_format(path) if fmt is None else fmt
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"fmt must be 'csv', 'csv.gz' or 'parquet', got {fmt!r}")

    def write(tmp: Path) -> None:
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            # mixed-type object columns Arrow cannot type: pandas writes them as text
            if fmt == "parquet":
                frame.astype(str).to_parquet(tmp, index=False)
            else:
                compression = {"method": "gzip", "mtime": 0} if fmt == "csv.gz" else None
                frame.to_csv(tmp, index=False, compression=compression)
            return
        if fmt == "parquet":
            pq.write_table(table, tmp)
        elif fmt == "csv.gz":
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(
                    filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0
                ) as out,
            ):
                pa_csv.write_csv(table, out)
        else:
            pa_csv.write_csv(table, tmp)

    return atomic_write(path, write)


# --------------------------------------------------------------------------------------------
# directories: staged under a temporary name, published by one link swap
# --------------------------------------------------------------------------------------------
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"
#: What a writer leaves behind when it dies: staging directories, a link not yet swapped in,
#: and (from older builds) the old version moved aside.
_LEFTOVERS = ("tmp", "link", "old")
_TEMPORARY = re.compile(r"\.(?:tmp|link)-(?P<pid>\d+)-[0-9a-f]+@(?P<host>.+)$")


def make_staging_dir(target: str | os.PathLike) -> Path:
    """A new empty directory beside ``target`` to write its next version into.

    Named ``.NAME.tmp-PID-RANDOM@HOST``: a later :func:`publish_dir` of the same target removes
    those whose process on this host is gone (a job killed while writing), never a live one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    name = f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}@{_HOST}"
    staged = target.parent / name
    staged.mkdir()
    return staged


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` (created if needed) for the block."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, publishing is still one replace
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish_dir(staged: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Make ``target`` name the complete directory ``staged``, in one atomic step.

    ``staged`` is renamed to a version beside the target (``.NAME.v-TIME-PID``), and ``target``
    becomes a symbolic link to it by renaming a new link over the old one (``os.replace``): a
    reader that opens ``target/...`` finds the old version or the new one, never neither, never
    a mix. Readers should resolve ``target`` once (``Path.resolve()``) and read every file of
    one version from there; the previous version is kept until the next publish, so a reader
    that resolved it has the whole of a publish to finish. Older versions, and staging
    directories of writers that died (:func:`make_staging_dir`), are removed. Publishers of one
    target take turns (an advisory lock beside it).

    A real directory at ``target`` (written before this layout) is moved aside to become the
    previous version: the one moment the target is missing. A file at ``target`` is an error.

    Returns ``target``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for text in ("one", "two"):
    ...         staged = make_staging_dir(f"{tmp}/out")
    ...         _ = (staged / "note.txt").write_text(text)
    ...         _ = publish_dir(staged, f"{tmp}/out")
    ...     (Path(tmp) / "out" / "note.txt").read_text(), len(os.listdir(tmp))
    ('two', 4)
    """
    staged, target = Path(staged), Path(target)
    parent = target.parent
    if target.exists() and not target.is_dir():
        raise FileExistsError(errno.EEXIST, "a file is in the way of a directory", str(target))
    with _locked(parent / f".{target.name}.lock"):
        previous = os.readlink(target) if target.is_symlink() else None
        version = f".{target.name}.v-{time.time_ns():020d}-{os.getpid()}"
        os.replace(staged, parent / version)
        link = parent / f".{target.name}.link-{os.getpid()}-{secrets.token_hex(4)}@{_HOST}"
        os.symlink(version, link, target_is_directory=True)
        try:
            if target.is_dir() and not target.is_symlink():
                previous = f".{target.name}.v-{time.time_ns():020d}-legacy"
                os.replace(target, parent / previous)
            os.replace(link, target)
        except BaseException:
            link.unlink(missing_ok=True)
            raise
        _fsync_dir(parent)
        keep = {version, previous}
        for entry in parent.iterdir():
            name = entry.name
            if name.startswith(f".{target.name}.v-") and name not in keep:
                shutil.rmtree(entry, ignore_errors=True)
            elif name.startswith(tuple(f".{target.name}.{kind}-" for kind in _LEFTOVERS)):
                match = _TEMPORARY.search(name)
                if match:
                    dead = match["host"] == _HOST and not _process_alive(int(match["pid"]))
                else:  # left by an older build (no owner in the name): gone after an hour
                    dead = time.time() - entry.lstat().st_mtime > 3600
                if dead and entry.is_symlink():
                    entry.unlink(missing_ok=True)
                elif dead:
                    shutil.rmtree(entry, ignore_errors=True)
    return target
