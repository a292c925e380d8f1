"""Slates computed ahead of requests, in a child process: the reload warm-up and the table.

:func:`warm` fills a new version's cache with the most requested slates before it serves;
:func:`build_table` fills it with every (or the best-connected) member's slate from one batch
ranking with recipient capacity held across all of them. Both rank in a niced child process on
one core, started with ``spawn`` (never ``fork``: the service runs threads), from the same
verified model files, so the slates are the ones ranking on request would give.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsys import IntroductionRecommender, load_model
from serving._cache import Row, explain_rows
from serving._snapshot import Snapshot
from serving._sources import sha256_file
from serving._types import describe

__all__ = ["TABLE_BYTES_PER_SLATE", "build_table", "table_size", "warm"]

logger = logging.getLogger(__name__)

#: Memory one precomputed slate of 20 takes in the cache, explained rows and their JSON included
#: (the 100,000-member service held 2.2–2.3 GB with its table; the loaded model alone, 0.53 GB).
TABLE_BYTES_PER_SLATE = 17_000


def table_size(n_members: int, precompute: int | Literal["all"], k: int) -> int:
    """Slates the table of ``precompute`` members' slates of ``k`` will hold: as asked, but no
    more than half this machine's memory takes.
    """
    wanted = n_members if precompute == "all" else min(int(precompute), n_members)
    per_slate = TABLE_BYTES_PER_SLATE * k / 20
    budget = _memory_bytes() // 2
    if budget and wanted * per_slate > budget:
        fits = int(budget // per_slate)
        logger.warning(
            "a table of %d slates would take about %.1f GB, more than half of this "
            "machine's %.1f GB: "
            "precomputing the %d best-connected members' slates instead",
            wanted,
            wanted * per_slate / 1e9,
            2 * budget / 1e9,
            fits,
        )
        return fits
    return wanted


def _memory_bytes() -> int:
    """This machine's physical memory (0 where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


# ---------------------------------------------------------------------------------- warm-up
def warm(
    snap: Snapshot, model_dir: Path, keys: list[tuple[str, int]], *, subprocess_min: int
) -> None:
    """Fill the new snapshot's cache with its slates for ``keys`` before it serves.

    Many keys are ranked in a child process (from the same verified files, so the same
    slates): ranking there does not compete with requests for this interpreter. A few, or
    when the child fails, are ranked here in small chunks that rest as long as they work.
    ``subprocess_min``: from this many keys on, the child ranks them.
    """
    if not keys:
        return
    started = time.perf_counter()
    how = "in-process"
    done = None
    unavailable, exposure = (
        snap.inbound.state(time.time()) if snap.inbound is not None else (None, None)
    )
    if len(keys) >= subprocess_min:
        try:
            done = _warm_in_child(model_dir, snap.manifest_sha256, keys, unavailable, exposure)
            how = "in a child process"
        except Exception as err:  # e.g. no process can be started here: warm in-process instead
            logger.warning(
                "warming in a child process failed (%s); warming in-process", describe(err)
            )
        else:
            if (
                done is None
            ):  # the directory already holds a newer version: the next poll brings it
                logger.info(
                    "version %s was replaced while warming; swapping it in unwarmed",
                    snap.version,
                )
                return
    if done is not None:
        for member_id, n, rows in done:
            snap.slates.put((member_id, n), rows)
    else:
        by_length: dict[int, list[str]] = {}
        for member_id, n in keys:
            by_length.setdefault(n, []).append(member_id)
        for n, members in by_length.items():
            for start in range(0, len(members), 8):
                t = time.perf_counter()
                snap.explained(members[start : start + 8], n)
                time.sleep(
                    time.perf_counter() - t
                )  # rest as long as it worked: requests keep the interpreter
    logger.info(
        "warmed %d slates of version %s %s in %.1fs",
        len(keys),
        snap.version,
        how,
        time.perf_counter() - started,
    )


def _warm_in_child(
    model_dir: Path,
    manifest_sha256: str,
    keys: list[tuple[str, int]],
    unavailable: np.ndarray | None,
    exposure: np.ndarray | None = None,
) -> list | None:
    """Rank and explain ``keys`` with the model in ``model_dir`` in a fresh child process.

    Returns ``[(member_id, n, rows), ...]``, or ``None`` when the
    directory no longer holds that version (it was replaced again meanwhile).
    """
    # spawn, never fork: this process runs threads (the server, the poller)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(
            _rank_explained, str(model_dir), manifest_sha256, keys, unavailable, exposure
        ).result()


def _child_model(model_dir: str, manifest_sha256: str) -> IntroductionRecommender | None:
    """In a background child: lower its priority and keep it to one core, then load the model
    (``None`` if replaced).
    """
    from threadpoolctl import threadpool_limits

    try:
        os.nice(10)  # background work: requests (and everything else) go first
    except OSError:
        pass
    threadpool_limits(1)  # one core: the other is serving
    try:
        import numba

        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass
    if sha256_file(Path(model_dir) / "manifest.json") != manifest_sha256:
        return None
    return load_model(model_dir)


def _rank_explained(
    model_dir: str,
    manifest_sha256: str,
    keys: list[tuple[str, int]],
    unavailable: np.ndarray | None,
    exposure: np.ndarray | None = None,
    chunk: int = 64,
) -> list | None:
    """The child's work (see :func:`_warm_in_child`): the same ranking and reasons as
    :meth:`Recommender.rank`.
    """
    model = _child_model(model_dir, manifest_sha256)
    if model is None:
        return None
    net = model.network_
    out = []
    by_length: dict[int, list[str]] = {}
    for member_id, n in keys:
        by_length.setdefault(n, []).append(member_id)
    for n, members in by_length.items():
        for start in range(0, len(members), chunk):
            part = members[start : start + chunk]
            rows = net.rows_of(part)
            known = [(m, int(r)) for m, r in zip(part, rows) if r >= 0]
            if not known:
                continue
            ids, scores = model.rank(
                np.array([r for _, r in known], dtype=np.int64),
                k=n,
                unavailable=unavailable,
                exposure=exposure,
            )
            for j, (member_id, row) in enumerate(known):
                keep = (ids[j] >= 0) & np.isfinite(scores[j])
                out.append((member_id, n, explain_rows(model, row, ids[j][keep], scores[j][keep])))
    return out


# ---------------------------------------------------------------------------------- table
def build_table(
    snap: Snapshot,
    model_dir: Path,
    k: int,
    *,
    replaced: Callable[[], bool] = lambda: False,
    workdir: Path | None = None,
    chunk: int = 1_000,
) -> None:
    """Rank the table's slates of ``k`` in a child process, then take them into ``snap``'s cache
    chunk by chunk.

    In the background (the first version) it stops once ``replaced()`` says another version
    replaced ``snap``; a new version's table is built before it serves (never replaced). A
    slate already ranked on request is kept (it was shown); the others count as planned
    showings in the inbound counter. ``workdir`` (the model files' private copy) is removed at
    the end.
    """
    progress = snap.precompute = {
        "state": "ranking",
        "slates": 0,
        "of": snap.table_size,
        "k": k,
        "seconds": 0.0,
    }
    started = time.perf_counter()
    try:
        ctx = multiprocessing.get_context("spawn")  # never fork: this process runs threads
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            total = pool.submit(
                _table_rank, str(model_dir), snap.manifest_sha256, progress["of"], k
            ).result()
            if total is None:
                progress["state"] = "stopped: the source holds a newer version"
                return
            progress["state"] = "explaining"
            for start in range(0, total, chunk):
                if replaced():
                    progress["state"] = "stopped: replaced by a newer version"
                    return
                taken = []
                for member_id, rows, others in pool.submit(
                    _table_explain, start, start + chunk
                ).result():
                    if snap.slates.put_new((member_id, k), rows):
                        taken.append(others)
                if snap.inbound is not None and taken:
                    snap.inbound.record(np.concatenate(taken), time.time(), planned=True)
                if gc.get_freeze_count():
                    # this process keeps its long-lived objects out of the collector (the
                    # service does): the table's slates are long-lived too, and full
                    # collections over millions of them stalled requests for up to 0.9 s
                    gc.freeze()
                progress["slates"] = min(start + chunk, total)
                progress["seconds"] = round(time.perf_counter() - started, 1)
        progress["state"] = "done"
        logger.info(
            "precomputed %d slates of version %s in %.1fs",
            total,
            snap.version,
            time.perf_counter() - started,
        )
    except (
        Exception
    ) as err:  # the table is an optimisation: requests are still ranked as they come
        progress["state"] = f"failed: {describe(err)}"
        logger.error(
            "precomputing the slates of version %s failed: %s", snap.version, describe(err)
        )
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


#: The precompute child's state between its calls (one model, its batch of slates).
_TABLE: dict[str, Any] = {}


def _table_rank(model_dir: str, manifest_sha256: str, limit: int, k: int) -> int | None:
    """In the precompute child: rank the ``limit`` best-connected members' slates in one batch
    (:meth:`recsys.IntroductionRecommender.rank_batch`, capacity held across them); returns how
    many."""
    _TABLE.clear()
    model = _child_model(model_dir, manifest_sha256)
    if model is None:
        return None
    degrees = np.diff(model.network_.adjacency.indptr)
    rows = np.argsort(-degrees, kind="stable")[:limit].astype(np.int64)
    ids, scores = model.rank_batch(rows, k=k)
    _TABLE.update(model=model, rows=rows, ids=ids, scores=scores)
    return len(rows)


def _table_explain(start: int, stop: int) -> list[tuple[str, tuple[Row, ...], np.ndarray]]:
    """In the precompute child: ``(member_id, explained rows, member rows in the slate)`` for
    slates ``start:stop``.
    """
    model, rows, ids, scores = _TABLE["model"], _TABLE["rows"], _TABLE["ids"], _TABLE["scores"]
    names = model.network_.member_ids
    out = []
    for j in range(start, min(stop, len(rows))):
        keep = (ids[j] >= 0) & np.isfinite(scores[j])
        others = ids[j][keep]
        out.append(
            (
                str(names[rows[j]]),
                explain_rows(model, int(rows[j]), others, scores[j][keep]),
                others,
            )
        )
    return out
