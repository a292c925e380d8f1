"""Tune the re-ranker's weights on validation data to meet equity and reach bounds.

The goals are stated in fairlearn's terms: appearing in a slate is the decision and the
candidate's group the sensitive feature. Demographic parity of exposure is the exposure ratio
(min over groups of exposure share ÷ population share, over the max); the relevance cost is the
loss of held-out recall. Sensitive attributes are read here, offline, only to *measure* a
candidate setting; the chosen weights act on structural signals alone (communities,
network-size tiers, degrees), so serving never reads them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import metrics as m
from recsys._assignment import PREFERENCE_DEPTH, assign_slates, assignment_head
from recsys._rerank import top_k

__all__ = ["DEFAULT_TARGETS", "DEFAULT_GRID", "tune_reranker", "slate_figures"]

logger = logging.getLogger(__name__)

#: Bounds the tuned re-ranker should meet on validation data, relative to ranking by score alone.
DEFAULT_TARGETS = {
    "min_recall_ratio": 0.95,  # recall ≥ 0.95 × unconstrained
    "min_bridge_gain": 2.0,  # bridge rate ≥ 2 × unconstrained
    "max_gini_ratio": 0.70,  # exposure Gini ≤ 0.70 × unconstrained
    "min_exposure_ratio": 0.85,  # for every sensitive attribute measured
}

#: Settings tried: bridge weight × popularity damping × tier-bound slack (None: no bounds) ×
#: capacity (times the average exposure) × places at the end of a slate given to the least
#: exposed × how deep in the preference list those look (times k; 6 is the whole list). The
#: weights are in units of a typical k-th best score (the linear bonus of
#: :class:`recsys.BridgeBonusReranker`). A loose capacity (20×) with places drawn from the whole
#: list is for networks whose held-out connections go to the most popular members (a Chung-Lu
#: network's), where a tight capacity costs a third of recall for the same Gini.
DEFAULT_GRID = {
    "bridge_weight": (0.0, 0.25, 0.5, 0.65, 0.8, 1.0),
    "degree_penalty": (0.0, 0.1, 0.16, 0.25),
    "bound_tolerance": (None, 0.15),
    "capacity_multiple": (2.0, 3.0, 5.0, 20.0),
    "floor_slots": (0, 2, 4, 6),
    "floor_depth": (2, PREFERENCE_DEPTH),
}

#: Grid keys that act in the global assignment, not in the preference lists.
_ASSIGNMENT_KEYS = ("capacity_multiple", "floor_slots", "floor_depth")


def slate_figures(
    member_rows: np.ndarray,
    ids: np.ndarray,
    *,
    relevant: sp.csr_matrix,
    communities: np.ndarray,
    population: np.ndarray,
    sensitive: pd.DataFrame,
    min_group_size: int = 20,
    groups: dict[str, tuple[np.ndarray, int]] | None = None,
) -> dict[str, float]:
    """Recall, bridge rate, exposure Gini and per-attribute exposure ratio of validation slates.

    Exposure figures count only ``population`` (the members who could be proposed at all: the
    union of the pools), so a sample of slates is compared on the members it could reach.
    ``groups`` (``{attribute: _group_codes(...)}`` over ``population``) saves coding the
    attributes again when many settings are measured on one population.
    """
    k = ids.shape[1]
    recall = m.recall_at_k(ids, relevant, k=k)
    exposure = m.exposure_counts(ids, n_members=len(communities))[population]
    figures = {
        "recall": float(np.nanmean(recall)) if np.isfinite(recall).any() else 0.0,
        "bridge_rate": m.bridge_rate(member_rows, ids, communities),
        "exposure_gini": m.gini(exposure),
    }
    for attr in sensitive.columns:
        codes, n_groups = (
            groups[attr] if groups is not None else _group_codes(sensitive, attr, population)
        )
        figures[f"exposure_ratio/{attr}"] = _exposure_ratio(
            exposure, codes, n_groups, min_group_size
        )
    return figures


def _group_codes(
    sensitive: pd.DataFrame, attr: str, population: np.ndarray
) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(sensitive[attr].to_numpy(dtype=object)[population])
    return codes, len(uniques)


def _exposure_ratio(
    exposure: np.ndarray, codes: np.ndarray, n_groups: int, min_group_size: int
) -> float:
    """:func:`recsys.metrics.exposure_ratio` with bincounts: it runs once per tuned setting, where
    fairlearn's MetricFrame (used for the reported figures) costs a third of a second each."""
    members = np.bincount(codes, minlength=n_groups)
    got = np.bincount(codes, weights=exposure, minlength=n_groups)
    keep = members >= min_group_size
    if keep.sum() < 2 or exposure.sum() == 0:
        return float("nan")
    ratio = (got[keep] / exposure.sum()) / (members[keep] / len(codes))
    return float(ratio.min() / ratio.max()) if ratio.max() > 0 else float("nan")


def tune_reranker(
    make: Callable[[dict], object],
    *,
    member_rows: np.ndarray,
    pool_ids: np.ndarray,
    scores: np.ndarray,
    outside: np.ndarray,
    relevant: sp.csr_matrix,
    communities: np.ndarray,
    sensitive: pd.DataFrame,
    capacity: np.ndarray | Callable[[float], np.ndarray],
    k: int = 20,
    targets: dict | None = None,
    grid: dict | None = None,
    max_members: int = 12_000,
    random_state: int = 0,
) -> tuple[dict, dict]:
    """Pick the re-ranker setting with the best recall among those meeting every bound.

    Each setting of the grid re-ranks the same validation pools (as batch ranking does:
    preference lists, then the global capacity assignment) and is measured with
    :func:`slate_figures`. Where no setting meets every bound, the one with the smallest total
    shortfall (each bound's miss relative to its target) is chosen, and the report says so.
    ``capacity`` is each member's capacity, or a function of the grid's ``capacity_multiple``
    giving it; ``floor_slots`` and ``floor_depth`` (times ``k``) in the grid are passed to
    :func:`recsys.assign_slates`.

    Returns
    -------
    params : dict
        The chosen setting: the grid's keys (``bridge_weight``, ``degree_penalty``,
        ``bound_tolerance``, ``capacity_multiple``, ``floor_slots``, ``floor_depth`` by default).
    report : dict
        The targets, the unconstrained and chosen figures, which bounds were met, and how many
        settings were tried.
    """
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    grid = grid or DEFAULT_GRID
    if len(member_rows) > max_members:
        pick = np.sort(
            np.random.default_rng(random_state).choice(
                len(member_rows), max_members, replace=False
            )
        )
        member_rows, pool_ids, scores, outside, relevant = (
            member_rows[pick],
            pool_ids[pick],
            scores[pick],
            outside[pick],
            relevant[pick],
        )
    population = np.unique(pool_ids[pool_ids >= 0])
    groups = {attr: _group_codes(sensitive, attr, population) for attr in sensitive.columns}
    measure = dict(
        relevant=relevant,
        communities=communities,
        population=population,
        sensitive=sensitive,
        groups=groups,
    )
    plain_ids, _ = top_k(pool_ids, scores, k)
    base = slate_figures(member_rows, plain_ids, **measure)

    grid = dict(grid)
    if not callable(capacity):
        fixed_capacity = np.asarray(capacity)
        capacity = lambda multiple: fixed_capacity  # noqa: E731
        grid.pop("capacity_multiple", None)
    assignment = {name: grid.pop(name) for name in _ASSIGNMENT_KEYS if name in grid}
    choices = _assignment_choices(assignment)
    capacities = {}
    tried = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid.keys(), values))
        reranker = make(params)
        # the preference lists do not depend on the assignment: one per weight setting
        prefs = reranker.preferences(
            member_rows, pool_ids, scores, PREFERENCE_DEPTH * k, outside=outside
        )
        required = reranker.required_rows(member_rows)
        heads = {}  # the first k - t places do not depend on how deep the last t look
        for how in choices:
            multiple, floor = how.get("capacity_multiple"), how.get("floor_slots", 0)
            if multiple not in capacities:
                capacities[multiple] = capacity(multiple)
            cap = capacities[multiple]
            mine = dict(k=k, capacity=cap, required=required)
            if floor and (multiple, floor) not in heads:
                heads[multiple, floor] = assignment_head(prefs, **mine, floor_slots=floor)
            got, _ = assign_slates(
                prefs,
                **mine,
                floor_slots=floor,
                floor_depth=how.get("floor_depth", 2) * k,
                head=heads.get((multiple, floor)) if floor else None,
            )
            figures = slate_figures(member_rows, got, **measure)
            tried.append(({**params, **how}, figures, _shortfall(figures, base, targets)))

    feasible = [t for t in tried if sum(t[2].values()) == 0]
    if feasible:
        params, figures, shortfall = max(feasible, key=lambda t: t[1]["recall"])
    else:
        params, figures, shortfall = min(
            tried, key=lambda t: (round(sum(t[2].values()), 6), -t[1]["recall"])
        )
    report = {
        "tuned": True,
        "targets": targets,
        "unconstrained": base,
        "chosen": figures,
        "params": params,
        "bounds_met": {name: miss == 0 for name, miss in shortfall.items()},
        "all_bounds_met": bool(feasible),
        "settings_tried": len(tried),
        "settings_meeting_bounds": len(feasible),
        "validation_members": int(len(member_rows)),
    }
    logger.info(
        "re-ranker tuned: %s (%d of %d settings meet every bound)",
        params,
        len(feasible),
        len(tried),
    )
    return params, report


def _assignment_choices(assignment: dict) -> list[dict]:
    """Every combination of the assignment's keys, except that without least-exposed places their
    depth is moot: those settings are tried once, at the first depth listed."""
    depths = assignment.get("floor_depth", (None,))
    choices = []
    for chosen in itertools.product(*assignment.values()):
        how = dict(zip(assignment.keys(), chosen))
        if how.get("floor_slots", 0) or how.get("floor_depth") == depths[0]:
            choices.append(how)
    return choices


def _shortfall(figures: dict, base: dict, targets: dict) -> dict[str, float]:
    """How far each bound is missed, relative to its target (0 where met)."""
    miss = {}
    if base["recall"] > 0:
        need = targets["min_recall_ratio"] * base["recall"]
        miss["recall"] = max(0.0, need - figures["recall"]) / need
    if base["bridge_rate"] > 0:
        need = targets["min_bridge_gain"] * base["bridge_rate"]
        miss["bridge_rate"] = max(0.0, min(need, 1.0) - figures["bridge_rate"]) / min(need, 1.0)
    if base["exposure_gini"] > 0:
        cap = targets["max_gini_ratio"] * base["exposure_gini"]
        miss["exposure_gini"] = max(0.0, figures["exposure_gini"] - cap) / cap
    for name, value in figures.items():
        if name.startswith("exposure_ratio/") and np.isfinite(value):
            need = targets["min_exposure_ratio"]
            miss[name] = max(0.0, need - value) / need
    return miss
