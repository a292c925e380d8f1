"""Saved models of older format versions, brought up to this build's.

Each step takes a manifest of one version to the next and says what changed; loading applies
them in order. A migration never rewrites a model's files, so their checksums stay valid
(version 3 stores arrays differently; the loader reads both layouts). A manifest newer than
this build, or of a version no step starts from, is refused.

| version | what it holds |
| --- | --- |
| 1 | the first format; parameters and re-ranker settings added over its life may be missing |
| 2 | every parameter and re-ranker setting present; ``slate_size``; the acceptance model's training-pair counts |
| 3 | ``community_ensemble.npy`` (the partitions the bridge bonus pays on), ``community_partitions``, ``community_feature`` |
| 4 | the graph and the member × interest matrix as plain ``.npy`` arrays (``NAME.indptr``, ``.indices``, ``.data``) and the connections as ``connections.npy``, which ``load_model(mmap=True)`` memory-maps; the manifest is unchanged, and the loader reads the ``.npz`` files of versions 1 and 2 as before |
"""  # noqa: E501 (a table row)

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

__all__ = ["FORMAT_VERSION", "migrate"]

#: The format version this build writes.
FORMAT_VERSION = 4


def _v1_to_v2(manifest: dict[str, Any]) -> dict[str, Any]:
    """Version 1 models saved before a parameter or setting existed rank as they did then:

    - ``three_hop_middles`` missing: walks of length three go on from every two-hop member (0);
    - ``slate_size`` missing: slates of 20 (the tuned least-exposed places are for 20);
    - re-ranker settings missing: the multiplicative bridge bonus (``bonus: log``, from before
      the additive one), no least-exposed places (``floor_slots: 0``, ``floor_depth: 2``), a
      score scale of 1, and the capacity multiple of the parameters, else 5;
    - no record of the acceptance model's training pairs (0).
    """
    params = manifest.setdefault("params", {})
    params.setdefault("three_hop_middles", 0)
    params.setdefault("slate_size", 20)
    setting = manifest.setdefault("rerank_params", {})
    setting.setdefault("bonus", "log")
    setting.setdefault("floor_slots", 0)
    setting.setdefault("floor_depth", 2)
    setting.setdefault("score_scale", 1.0)
    if setting.get("capacity_multiple") is None:
        setting["capacity_multiple"] = params.get("capacity_multiple") or 5.0
    for name in ("bridge_weight", "degree_penalty"):
        setting.setdefault(name, params.get(name, 0.0))
    setting.setdefault("bound_tolerance", params.get("bound_tolerance"))
    manifest.setdefault("rerank_report", {"tuned": False})
    manifest.setdefault("training", {"pairs": 0, "positives": 0})
    return manifest


def _v2_to_v3(manifest: dict[str, Any]) -> dict[str, Any]:
    """Version 2 models have no community ensemble (their bridge bonus pays on their one
    partition: ``community_partitions: 1``) and their acceptance model was trained with the
    ``same_community`` feature (``community_feature: true``)."""
    params = manifest.setdefault("params", {})
    params.setdefault("community_partitions", 1)
    params.setdefault("community_feature", True)
    return manifest


def _v3_to_v4(manifest: dict[str, Any]) -> dict[str, Any]:
    """Nothing in the manifest changes: version 4 stores the same arrays as plain ``.npy``
    files (memory-mappable) where version 3 zipped them (``adjacency.npz``,
    ``member_interests.npz``); the loader tells the two apart by the files listed."""
    return manifest


#: ``{version: step to version + 1}``.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}


def migrate(manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``manifest`` brought to :data:`FORMAT_VERSION`; raises ``ValueError`` for a
    version this build cannot read.

    Examples
    --------
    >>> old = {"format_version": 1, "params": {"capacity_multiple": None},
    ...        "rerank_params": {"bridge_weight": 0.5, "degree_penalty": 0.1,
    ...                          "bound_tolerance": None}}
    >>> new = migrate(old)
    >>> new["format_version"], new["rerank_params"]["bonus"], new["params"]["slate_size"]
    (4, 'log', 20)
    """
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"format version {version!r} is not a whole number")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"format version {version} is newer than this build reads ({FORMAT_VERSION}); "
            "upgrade plusone to load it"
        )
    manifest = copy.deepcopy(manifest)
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ValueError(f"format version {version} is not supported")
        manifest = step(manifest)
        version += 1
        manifest["format_version"] = version
    return manifest
