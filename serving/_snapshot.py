"""One loaded model version as it serves: the model, its slate cache and its capacity counts.

A :class:`Snapshot` never changes its model or version; a reload replaces it whole, so a request
that started on one snapshot finishes on it. :meth:`Snapshot.explained` is how every member's slate
is made (requests, batches, the in-process warm-up): cached slates first, the misses ranked in
one call and explained.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys import IntroductionRecommender
from serving._cache import Row, SlateCache, explain_rows
from serving._capacity import InboundLimit

__all__ = ["Snapshot"]


class Snapshot:
    """One loaded model version. The model and version never change; it is replaced whole on
    reload.
    """

    __slots__ = (
        "model",
        "version",
        "manifest_sha256",
        "source",
        "fingerprint",
        "loaded_at",
        "registry_version",
        "slates",
        "inbound",
        "precompute",
        "table_size",
        "_interests",
    )

    def __init__(
        self,
        *,
        model: IntroductionRecommender,
        version: str,
        manifest_sha256: str,
        source: str,
        fingerprint: Any,
        registry_version: str | None,
        cache_size: int,
        inbound: InboundLimit | None,
    ):
        self.model = model
        self.version = version
        self.manifest_sha256 = manifest_sha256
        self.source = source
        self.fingerprint = (
            fingerprint  # the source state it came from; updated when only the stat changed
        )
        self.loaded_at = time.time()
        self.registry_version = registry_version
        self.slates = SlateCache(cache_size)
        self.inbound = inbound
        self.precompute: dict[str, Any] | None = (
            None  # progress of the background slate table, when one is built
        )
        self.table_size = 0  # slates the precomputed table holds when built
        self._interests: tuple[dict[str, int], np.ndarray] | None = None

    @property
    def n_members(self) -> int:
        return self.model.network_.n_members

    def interest_columns(self) -> tuple[dict[str, int], np.ndarray]:
        """Interest name → column, and each interest's member count (built once, on first cold
        start).
        """
        built = self._interests
        if built is None:  # a race only builds it twice
            net = self.model.network_
            lookup = {str(name): i for i, name in enumerate(net.interest_names)}
            built = self._interests = (
                lookup,
                np.bincount(net.member_interests.indices, minlength=net.n_interests),
            )
        return built

    def explained(self, member_ids: Sequence[str], n: int) -> list[tuple[Row, ...] | None]:
        """Explained top-``n`` slates of ``member_ids`` from the snapshot's cache, ranking the
        misses in one call.

        ``None`` for members the model does not know.
        """
        net = self.model.network_
        out: list[tuple[Row, ...] | None] = [self.slates.get((m, n)) for m in member_ids]
        missing = [i for i, v in enumerate(out) if v is None]
        if not missing:
            return out
        rows = net.rows_of([member_ids[i] for i in missing])
        todo = [(i, int(r)) for i, r in zip(missing, rows) if r >= 0]
        if not todo:
            return out
        now = time.time()
        unavailable, exposure = (
            self.inbound.state(now) if self.inbound is not None else (None, None)
        )
        # a member asked for twice gets one slate (the least-exposed places count each showing)
        unique_rows, slot = np.unique(
            np.array([r for _, r in todo], dtype=np.int64), return_inverse=True
        )
        ids, scores = self.model.rank(unique_rows, k=n, unavailable=unavailable, exposure=exposure)
        keep = (ids >= 0) & np.isfinite(scores)
        if self.inbound is not None:
            self.inbound.record(ids[keep], now)
        explained = [
            explain_rows(self.model, row, ids[j][keep[j]], scores[j][keep[j]])
            for j, row in enumerate(unique_rows)
        ]
        for (i, _), j in zip(todo, slot):
            self.slates.put((member_ids[i], n), explained[j])
            out[i] = explained[j]
        return out
