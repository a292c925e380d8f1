"""The in-process ranking API: one saved model behind thread-safe ``rank`` calls, with hot reload.

A :class:`Recommender` follows a *model source* — a saved-model directory or an MLflow model URI
(``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH``) — and answers with typed,
frozen results: a :class:`Slate` of :class:`Introduction` s, each with its :class:`Reasons`.

Hot reload: :meth:`Recommender.reload` looks at the source; when it names a new version, the new
model is loaded and verified completely (manifest checksums through :func:`recsys.load_model`,
then one trial ranking) *before* a single reference is swapped. Requests already running keep the
snapshot they started with; no request ever sees half a model. A version that fails to load leaves
the last good one serving and is remembered in :attr:`Recommender.last_reload_error` (and not
retried until the source changes again).

The pieces it puts together live beside it: the model source (``_sources``), the snapshot of one
loaded version (``_snapshot``) with its slate cache (``_cache``) and recipient capacity counts
(``_capacity``), and the slates computed ahead in a child process (``_precompute``).

Privacy: nothing here reads a sensitive attribute. A saved model holds none (only member ids,
communities, interests, connections and operational columns); a model that somehow carries
sensitive columns is refused at load.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recsys import (
    MAX_SLATE_SIZE,
    ModelFormatError,
    check_slate_size,
    load_model,
    summarize_reasons,
)
from serving._broker import BrokerSlate, introductions_to_make
from serving._cache import rounded_score, to_introduction
from serving._capacity import InboundLimit
from serving._precompute import build_table, table_size, warm
from serving._snapshot import Snapshot
from serving._sources import open_source, sha256_file
from serving._types import (
    ColdStartUnavailableError,
    Introduction,
    ModelNotLoadedError,
    Reasons,
    ReloadError,
    ReloadResult,
    Slate,
    UnknownInterestsError,
    UnknownMemberError,
    describe,
    shown_value,
)

__all__ = ["Recommender"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- recommender
class Recommender:
    """Introductions from a saved model, safe to call from many threads, with hot reload.

    Build one with :meth:`load` (raises when the model cannot be loaded) or with the constructor
    (loads nothing; call :meth:`reload`). Every call works on the snapshot current when it
    started, so a reload never changes a model under a running request.

    Parameters
    ----------
    source : str or path
        A saved-model directory, or an MLflow model URI (``models:/NAME@ALIAS``,
        ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH``).
    cache_size : int
        Explained slates kept per model version, keyed by (member, slate length); least recently
        used go first; 0 switches the cache off. A slate is the same for the same member and model
        version, so a cached one is exactly what ranking again would give; the cache is dropped
        with its version on reload.
    warm_on_reload : int
        On reload, the new version's slates for this many of the most recently requested
        (member, length) pairs are computed *before* the swap, so the switch does not meet a cold
        cache.
    warm_subprocess_min : int
        From this many slates on, the warm-up ranks in a child process, off this interpreter.
    precompute : int or "all"
        A niced child process ranks the slates of this many members (the best-connected first;
        ``"all"``: every member) at length ``precompute_k`` in one batch with recipient capacity
        held across them (as ``recsys rank --members all`` does), and they go into the cache; the
        cache grows by that many entries. The first version serves at once and fills its table
        in the background (a member not in it yet is ranked on request); a new version's table is
        built before its swap, while the old one serves. 0 (the default) builds no table: it
        costs the batch's time and about 17 kB of memory per member; a table that would take more
        than half this machine's memory is cut to the best-connected members that fit (with a
        warning).
    precompute_k : int
        Slate length of the precomputed table (requests for another ``k``, or with ``exclude``,
        are ranked on request).
    capacity_half_life : float or None
        Recipient capacity in serving: members shown in their capacity of slates lately (counts
        halve every this many seconds) are left out of the slates ranked next (see
        ``serving._capacity.InboundLimit``). ``None`` switches it off; models without re-ranking
        have none.

    Examples
    --------
    >>> import tempfile
    >>> from recsys import IntroductionRecommender, save_model, synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> model = IntroductionRecommender(pool_size=30, als_iterations=2).fit(net)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rec = Recommender.load(save_model(model, f"{tmp}/model"))
    >>> member = str(model.network_.member_ids[0])
    >>> slate = rec.rank(member, k=3)
    >>> len(slate.introductions) <= 3, slate.member_id == member
    (True, True)
    """

    def __init__(
        self,
        source: str | os.PathLike,
        *,
        cache_size: int = 20_000,
        warm_on_reload: int = 2_000,
        warm_subprocess_min: int = 64,
        precompute: int | Literal["all"] = 0,
        precompute_k: int = 20,
        capacity_half_life: float | None = 86_400.0,
    ):
        if cache_size < 0 or warm_on_reload < 0:
            raise ValueError("cache_size and warm_on_reload must be at least 0")
        if precompute != "all" and (
            isinstance(precompute, bool) or not isinstance(precompute, int) or precompute < 0
        ):
            raise ValueError(
                f"precompute must be a number of members (at least 0) or 'all', got {precompute!r}"
            )
        _check_k(precompute_k)
        if capacity_half_life is not None and not capacity_half_life > 0:
            raise ValueError(
                "capacity_half_life must be a positive number of seconds or None, got "
                f"{capacity_half_life!r}"
            )
        self.source = os.fspath(source)
        self.cache_size = int(cache_size)
        self.warm_on_reload = int(warm_on_reload)
        self.warm_subprocess_min = int(warm_subprocess_min)
        self.precompute = precompute
        self.precompute_k = int(precompute_k)
        self.capacity_half_life = capacity_half_life
        self._source = open_source(source)
        self._snapshot: Snapshot | None = None
        self._pending: Snapshot | None = (
            None  # a version being prepared (its table built) before its swap
        )
        self._reload_lock = threading.Lock()
        self._last_error: ReloadError | None = None
        self._failed_fingerprint: Any = None

    @classmethod
    def load(cls, source: str | os.PathLike, **kwargs: Any) -> Recommender:
        """A recommender with its model loaded; raises :class:`recsys.ModelFormatError` (or the
        MLflow error) if it cannot be.

        Keyword arguments are the constructor's.
        """
        rec = cls(source, **kwargs)
        rec.reload(force=True, raise_errors=True)
        return rec

    # ------------------------------------------------------------------ state
    @property
    def model_version(self) -> str | None:
        """Version of the model serving now (``None`` before the first successful load)."""
        snap = self._snapshot
        return snap.version if snap is not None else None

    @property
    def is_loaded(self) -> bool:
        return self._snapshot is not None

    @property
    def last_reload_error(self) -> ReloadError | None:
        """The last failed load, cleared by the next successful one."""
        return self._last_error

    def status(self) -> dict[str, Any]:
        """What serves now, as plain data (for health checks)."""
        snap = self._snapshot
        err = self._last_error
        return {
            "source": self._source.label,
            "model_version": snap.version if snap else None,
            "registry_version": snap.registry_version if snap else None,
            "manifest_sha256": snap.manifest_sha256 if snap else None,
            "n_members": snap.n_members if snap else None,
            "loaded_at": _iso(snap.loaded_at) if snap else None,
            "cache": snap.slates.stats() if snap else None,
            "precompute": dict(snap.precompute) if snap and snap.precompute else None,
            "inbound": snap.inbound.stats() if snap and snap.inbound else None,
            "next_version": _pending_status(self._pending),
            "last_reload_error": None
            if err is None
            else {"message": err.message, "at": _iso(err.at)},
        }

    def _current(self) -> Snapshot:
        snap = self._snapshot  # one read: the whole call uses this snapshot
        if snap is None:
            err = self._last_error
            detail = f": {err.message}" if err else ""
            raise ModelNotLoadedError(f"no model is loaded yet from {self._source.label}{detail}")
        return snap

    # ------------------------------------------------------------------ reload
    def reload(
        self, *, force: bool = False, raise_errors: bool = False, wait: bool = True
    ) -> ReloadResult:
        """Load the source's current version if it is new (or always, with ``force``) and swap it
        in.

        The new model is loaded and verified completely (and its cache warmed) before the swap.
        On failure — at any step: fetching, verifying, the trial ranking, warming, building its
        table — the current model keeps serving, the error is logged and kept in
        :attr:`last_reload_error` (naming the source, never a private copy's path), and the same
        source state is not retried until it changes (unless ``force``). With ``raise_errors``
        the error propagates as well. With ``wait=False`` a reload already running is not waited
        for: the call returns at once with ``busy`` set.
        """
        if not self._reload_lock.acquire(blocking=wait):
            version = self.model_version
            return ReloadResult(False, version, version, busy=True)
        try:  # one load at a time; readers never wait on this lock
            return self._reload(force=force, raise_errors=raise_errors)
        finally:
            self._reload_lock.release()

    def _reload(self, *, force: bool, raise_errors: bool) -> ReloadResult:
        previous = self._snapshot
        prev_version = previous.version if previous else None
        unchanged = ReloadResult(False, prev_version, prev_version)
        try:
            fingerprint = self._source.fingerprint()
        except Exception as err:  # e.g. the registry is unreachable: keep serving
            self._record_failure(None, f"cannot look up {self._source.label}: {describe(err)}")
            if raise_errors:
                raise
            return unchanged
        if not force:
            if previous is not None and fingerprint == previous.fingerprint:
                return unchanged
            if self._last_error is not None and fingerprint == self._failed_fingerprint:
                return unchanged
        workdir = Path(tempfile.mkdtemp(prefix="plusone-serve-"))
        keep_workdir = False
        try:
            try:
                snap, model_dir = self._load_snapshot(
                    fingerprint, workdir, unchanged_from=None if force else previous
                )
                if snap is not previous:
                    self._prepare(snap, previous, model_dir)
            except Exception as err:
                message = self._public(describe(err), workdir)
                self._record_failure(fingerprint, message)
                if raise_errors and isinstance(err, ModelFormatError):
                    raise ModelFormatError(message) from None
                if raise_errors:
                    raise
                return unchanged
            self._last_error = None
            self._failed_fingerprint = None
            if snap is previous:  # same content (e.g. the manifest was only touched)
                return unchanged
            self._snapshot = snap  # the atomic swap
            if previous is None:  # the first version serves at once and fills its table
                keep_workdir = self._start_precompute(snap, model_dir, workdir)
        finally:
            if not keep_workdir:  # downloads only; the model is in memory
                shutil.rmtree(workdir, ignore_errors=True)
        logger.info(
            "serving model version %s from %s (%d members)%s",
            snap.version,
            self._source.label,
            snap.n_members,
            f", replacing {prev_version}" if prev_version else "",
        )
        if previous is not None:
            # in pieces, here in the reloading thread, not in one stall
            previous.slates.drain()
        return ReloadResult(True, snap.version, prev_version)

    def _prepare(self, snap: Snapshot, previous: Snapshot | None, model_dir: Path) -> None:
        """Before the swap: carry capacity counts over, warm the cache, build the table."""
        if previous is not None and previous.inbound is not None and snap.inbound is not None:
            snap.inbound.carry_over(previous.inbound)
        if previous is not None and self.warm_on_reload:
            warm(
                snap,
                model_dir,
                previous.slates.hottest(self.warm_on_reload),
                subprocess_min=self.warm_subprocess_min,
            )
        if previous is not None and snap.table_size:
            # a new version's table is built before the swap, while the old one serves from
            # its own: traffic spread over every member never meets an empty table
            self._pending = snap
            try:
                build_table(snap, model_dir, self.precompute_k)
            finally:
                self._pending = None

    def _public(self, message: str, workdir: Path) -> str:
        """``message`` with the private copy's path replaced by the source it came from."""
        for private in (workdir / "model", workdir):
            message = message.replace(str(private), self._source.label)
        return message

    def _record_failure(self, fingerprint: Any, message: str) -> None:
        serving = self._snapshot.version if self._snapshot else None
        self._last_error = ReloadError(message=message, source=self._source.label, at=time.time())
        self._failed_fingerprint = fingerprint
        logger.error(
            "model from %s failed to load: %s; %s",
            self._source.label,
            message,
            f"still serving version {serving}" if serving else "no model is serving",
        )

    def _load_snapshot(
        self, fingerprint: Any, workdir: Path, *, unchanged_from: Snapshot | None
    ) -> tuple[Snapshot, Path]:
        """Fetch (into ``workdir`` if it must be downloaded), verify and load the source's current
        version.

        Returns the snapshot and the saved-model directory it came from; ``unchanged_from``
        itself when its manifest is the same.
        """
        model_dir, registry_version = self._source.fetch(workdir)
        manifest = model_dir / "manifest.json"
        manifest_sha = sha256_file(manifest) if manifest.is_file() else ""
        if unchanged_from is not None and manifest_sha == unchanged_from.manifest_sha256:
            unchanged_from.fingerprint = (
                fingerprint  # remember the new stat, keep the model and its cache
            )
            return unchanged_from, model_dir
        model = load_model(
            model_dir
        )  # verifies format and every checksum; reads everything into memory
        if model.network_.sensitive.shape[1]:
            raise ModelFormatError(
                f"{model_dir}: the model carries sensitive member columns; refusing to serve it"
            )
        if model.network_.n_members == 0:
            raise ModelFormatError(f"{model_dir}: the model has no members")
        model.rank(
            np.zeros(1, dtype=np.int64), k=1
        )  # a trial ranking: fail here, not on a request
        inbound = (
            InboundLimit(model, self.capacity_half_life)
            if self.capacity_half_life and model.rerank
            else None
        )
        n_table = table_size(model.network_.n_members, self.precompute, self.precompute_k)
        snap = Snapshot(
            model=model,
            version=registry_version or manifest_sha[:12],
            manifest_sha256=manifest_sha,
            source=self._source.label,
            fingerprint=fingerprint,
            registry_version=registry_version,
            cache_size=self.cache_size + n_table,
            inbound=inbound,
        )
        snap.table_size = n_table
        return snap, model_dir

    def _start_precompute(self, snap: Snapshot, model_dir: Path, workdir: Path) -> bool:
        """Start building ``snap``'s slate table in the background; True when the thread now owns
        ``workdir``.
        """
        if not snap.table_size:
            return False
        thread = threading.Thread(
            target=build_table,
            args=(snap, model_dir, self.precompute_k),
            kwargs={"replaced": lambda: self._snapshot is not snap, "workdir": workdir},
            name="plusone-precompute",
            daemon=True,
        )
        thread.start()
        return True

    # ------------------------------------------------------------------ ranking
    def rank(self, member_id: str, k: int = 20, *, exclude: Iterable[str] = ()) -> Slate:
        """The slate of at most ``k`` introductions for one member, best first.

        Parameters
        ----------
        member_id : str
        k : int
            Slate size, at least 1.
        exclude : iterable of str
            Member ids not to propose (already shown, dismissed); unknown ids are ignored.

        Raises
        ------
        UnknownMemberError
            The member is not in the model.
        ModelNotLoadedError
            No model has loaded yet.
        """
        snap, rows = self._slate_rows(member_id, k, exclude, cached_only=False)
        return Slate(str(member_id), tuple(to_introduction(r) for r in rows), snap.version)

    def rank_json(
        self,
        member_id: str,
        k: int = 20,
        *,
        exclude: Iterable[str] = (),
        cached_only: bool = False,
    ) -> str | None:
        """:meth:`rank`'s slate as the HTTP service's JSON document (``Slate.to_dict()``, as text).

        With ``cached_only`` it never ranks: ``None`` unless the slate is in the cache (the HTTP
        service answers those without leaving its event loop).
        """
        found = self._slate_rows(member_id, k, exclude, cached_only=cached_only)
        if found is None:
            return None
        snap, rows = found
        return (
            f'{{"member_id":{json.dumps(str(member_id))},'
            f'"introductions":[{",".join(r[8] for r in rows)}],'
            f'"model_version":{json.dumps(snap.version)}}}'
        )

    def _slate_rows(self, member_id: str, k: int, exclude: Iterable[str], *, cached_only: bool):
        _check_k(k)
        snap = self._current()
        net = snap.model.network_
        member_id = str(member_id)
        skip = set(_ids(exclude, "exclude")) if exclude else set()
        if skip:
            skip.intersection_update(
                net.member_ids[r] for r in net.rows_of(sorted(skip)) if r >= 0
            )
        # ask for one more per excluded member, then filter: the slate stays k long when it can
        n = min(k + len(skip), MAX_SLATE_SIZE)
        if cached_only:
            rows = snap.slates.peek((member_id, n))
            if rows is None:
                return None
        else:
            (rows,) = snap.explained([member_id], n)
        if rows is None:
            raise UnknownMemberError(member_id, net.n_members)
        if skip:
            rows = tuple(r for r in rows if r[0] not in skip)
        return snap, rows[:k]

    def rank_batch(
        self,
        member_ids: Sequence[str],
        k: int = 20,
        *,
        on_unknown: Literal["raise", "skip"] = "raise",
    ) -> list[Slate]:
        """Slates for many members, ranked in one vectorised call, in the order given.

        With ``on_unknown="skip"`` members the model does not know are left out (compare the
        slates' ``member_id`` with the request); with ``"raise"`` the first one raises
        :class:`UnknownMemberError`.
        """
        _check_k(k)
        snap = self._current()
        ids_in = _ids(member_ids, "member_ids")
        if on_unknown == "raise" and ids_in:
            rows = snap.model.network_.rows_of(ids_in)
            if (rows < 0).any():
                raise UnknownMemberError(ids_in[int(np.flatnonzero(rows < 0)[0])], snap.n_members)
        found = snap.explained(ids_in, k) if ids_in else []
        return [
            Slate(m, tuple(to_introduction(r) for r in rows), snap.version)
            for m, rows in zip(ids_in, found)
            if rows is not None
        ]

    def rank_cold_start(self, interests: Iterable[str], k: int = 20) -> Slate:
        """A slate for someone the model has not seen, from the interests they gave.

        Candidates are members who share the rarer of those interests (cosine of TF-IDF rows);
        the score is that similarity. Unknown interests are ignored.

        Raises
        ------
        UnknownInterestsError
            None of the interests is known to the model.
        """
        _check_k(k)
        snap = self._current()
        model = snap.model
        source = model.sources_.get("interests")
        if source is None:
            raise ColdStartUnavailableError(
                "this model has no interest-based candidate source, so it cannot rank "
                "members it has not seen"
            )
        lookup, df = snap.interest_columns()
        if isinstance(interests, (str, bytes)):
            raise TypeError("interests must be a list of interest names, not one string")
        given = list(dict.fromkeys(str(i) for i in interests))
        cols = np.array(sorted({lookup[name] for name in given if name in lookup}), dtype=np.int64)
        if len(cols) == 0:
            shown = ", ".join(shown_value(g) for g in given[:5]) + (
                ", ..." if len(given) > 5 else ""
            )
            raise UnknownInterestsError(
                f"none of the interests given ({shown}) is known to the model; "
                f"it knows {len(lookup):,} interests, e.g. {next(iter(lookup), 'none')!r}"
            )
        query = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), cols, np.array([0, len(cols)])),
            shape=(1, model.network_.n_interests),
        )
        ids, scores = source.candidates_for_interests(query, k)
        keep = (ids[0] >= 0) & np.isfinite(scores[0])
        intros = []
        net = model.network_
        for other, score in zip(ids[0][keep], scores[0][keep]):
            theirs = net.member_interests[int(other)].indices
            shared = np.intersect1d(cols, theirs, assume_unique=True)
            shared = shared[np.argsort(df[shared], kind="stable")]  # the rarest say the most
            reasons = Reasons(
                shared_interests=tuple(str(x) for x in net.interest_names[shared[:3]]),
                n_shared_interests=int(len(shared)),
                mutual_contacts=(),
                n_mutual_contacts=0,
                bridges_communities=False,
                summary=summarize_reasons({"n_shared_interests": int(len(shared))}),
            )
            intros.append(
                Introduction(str(net.member_ids[int(other)]), rounded_score(score), reasons)
            )
        return Slate(None, tuple(intros), snap.version)

    def rank_introductions_to_make(self, member_id: str, k: int = 10) -> BrokerSlate:
        """Introductions this member could make between their own contacts, best first, with
        reasons.

        A thin wrapper over :func:`serving.introductions_to_make` on the current snapshot;
        returns a :class:`serving.BrokerSlate`.

        Raises
        ------
        UnknownMemberError
            The member is not in the model.
        recsys.TooFewContactsError
            The member has fewer than two contacts.
        ModelNotLoadedError
            No model has loaded yet.
        """
        _check_k(k)
        snap = self._current()
        return introductions_to_make(snap.model, str(member_id), k, version=snap.version)


def _pending_status(pending: Snapshot | None) -> dict[str, Any] | None:
    if pending is None:
        return None
    return {
        "model_version": pending.version,
        "precompute": dict(pending.precompute) if pending.precompute else None,
    }


def _check_k(k: int) -> None:
    check_slate_size(k)  # at most recsys.MAX_SLATE_SIZE: bounded before anything is allocated


def _ids(values: Iterable[str], name: str) -> list[str]:
    """A list of member ids; one string is refused (it would be taken as its characters)."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a list of member ids, not one string")
    return [str(v) for v in values]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
