"""A job's output directory, written complete and published in one step.

``recsys train --output OUT`` writes its model, metrics, config, reports and plots into a
staging directory ``OUT/.staging-*``; only when everything (the MLflow logging too) has
succeeded is that directory published: it becomes a version ``OUT/.current.v-*`` and the one
link ``OUT/current`` is swapped to it (:func:`recsys.publish_dir`; the previous version stays
until the next publish, for readers that resolved it). What users open goes through that
link: ``OUT/model``, ``OUT/metrics.json``, ``OUT/config.yaml``, ``OUT/groups``,
``OUT/per_member.parquet`` and ``OUT/plots`` are links into ``OUT/current``, so a reader sees the
whole of one job's output or the whole of the next, never the new model beside the old metrics.
A job that fails or is killed publishes nothing; its staging directory is removed then, or by
the next job on the same output. One job writes to an output at a time (an advisory lock,
``OUT/.lock``): a second one stops at once, before loading any data.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from recsys import publish_dir

__all__ = ["JobOutput", "OutputError"]

logger = logging.getLogger(__name__)

CURRENT = "current"
STAGING_PREFIX = ".staging-"
LOCK = ".lock"


class OutputError(ValueError):
    """An output directory a job cannot write to: a file is in the way, it cannot be created,
    or another job is writing to it."""


class JobOutput:
    """The output directory of one job: check it, stage into it, publish it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = JobOutput(f"{tmp}/run")
    ...     with out.staging() as stage:
    ...         _ = (stage / "metrics.json").write_text("{}")
    ...         out.publish()
    ...     (Path(tmp) / "run" / "metrics.json").read_text()
    '{}'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.stage: Path | None = None
        self._lock = None

    def check(self) -> None:
        """Refuse an output that cannot be a directory (before any data is read)."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"--output {self.path}: is a file, not a directory")
        parent = self.path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputError(f"--output {self.path}: {parent} is a file, not a directory")
        if not os.access(parent if not self.path.exists() else self.path, os.W_OK):
            raise OutputError(f"--output {self.path}: not writable")

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """Lock the output, clear what dead jobs left, and yield a fresh staging directory
        (removed on the way out unless published)."""
        self.check()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(
                f"--output {self.path}: cannot be created ({err.strerror})"
            ) from None
        self._acquire()
        try:
            for entry in self.path.iterdir():  # we hold the lock: any staging is a dead job's
                if entry.name.startswith(STAGING_PREFIX):
                    logger.info("removing %s, left by a job that did not finish", entry)
                    shutil.rmtree(entry, ignore_errors=True)
            stage = self.path / f"{STAGING_PREFIX}{os.getpid()}"
            stage.mkdir()
            self.stage = stage
            try:
                yield stage
            finally:
                if self.stage is not None:  # not published
                    shutil.rmtree(stage, ignore_errors=True)
                self.stage = None
        finally:
            self._release()

    def publish(self) -> None:
        """Make the staged output the current one, in one step (see the module docstring)."""
        if self.stage is None:
            raise RuntimeError("publish() is called inside staging()")
        entries = sorted(p.name for p in self.stage.iterdir())
        publish_dir(self.stage, self.path / CURRENT)  # the one atomic step
        self.stage = None
        for entry in entries:  # OUT/model -> current/model, made once
            _replace_with_link(self.path / entry, f"{CURRENT}/{entry}")
        for entry in self.path.iterdir():  # links to what this version does not have
            if entry.is_symlink() and not entry.exists():
                if os.readlink(entry).startswith(f"{CURRENT}/"):
                    entry.unlink()
        logger.info("published %s", self.path)

    def _acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        fh = open(self.path / LOCK, "a+")  # noqa: SIM115 (held until _release)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputError(
                    f"--output {self.path}: another job ({holder}) is writing to it; wait for "
                    "it to finish or choose another --output"
                ) from None
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._lock = fh

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing releases the lock
            self._lock = None


def _replace_with_link(path: Path, target: str) -> None:
    """``path`` becomes a relative link to ``target``; whatever was there goes (a link in one
    rename; a real file or directory, from before this layout, first moved aside)."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    tmp = path.with_name(f".{path.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    try:
        if path.is_dir() and not path.is_symlink():
            aside = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, aside)
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
