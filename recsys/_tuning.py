"""Tune the re-ranker on validation connections to meet reach and equity bounds set against the
peer, Adamic-Adar, at the least loss of recall.

The bounds are stated against plain Adamic-Adar slates of the same members on the same graph
(the peer every figure is judged beside): bridge rate at least ``min_bridge_ratio`` × the
peer's, exposure Gini at most ``max_gini_ratio`` × the peer's, and an exposure ratio of at
least ``min_exposure_ratio`` for every sensitive attribute ("undisclosed" a group of its own)
and for network-size tiers. Recall is what the bounds cost; it is reported against
``min_recall_ratio`` × the peer's.

The search is a constrained one, not a grid: each bound has a price that buys it. The bridge
bound's price is the bridge weight itself (the linear bonus is the Lagrange multiplier of "most
expected acceptances with at least B bridges"); the equity bounds' price ``θ ∈ [0, 1]`` moves
along :func:`equity_path` (a tighter recipient capacity, more least-exposed places drawn from
the whole preference list, more popularity damping). The recall the bounds may spend (from
the unconstrained ranking's down to the recall bound) is shared: the bridge weight is bisected
to the smallest value that meets its bound within half of it, the equity price within the rest,
and the bridge weight again with what equity left. A network that needs a larger bridge weight
or a deeper least-exposed fill gets it. A bound not met even at its largest price is reported
infeasible, and the largest price within the recall bound is kept.

Sensitive attributes are read here, offline, only to *measure* a candidate setting; the chosen
setting acts on structural signals alone (communities, network-size tiers, degrees), so serving
never reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import metrics as m
from recsys._assignment import PREFERENCE_DEPTH, assign_slates
from recsys._communities import co_membership
from recsys._rerank import top_k

__all__ = ["DEFAULT_TARGETS", "Validation", "equity_path", "slate_figures", "tune_reranker"]

logger = logging.getLogger(__name__)

#: Bounds against the peer (plain Adamic-Adar on the same validation members and graph).
DEFAULT_TARGETS = {
    # Recall ≥ 1.04 × Adamic-Adar's on validation: issue 17 asked 1.08, but with it the whole
    # budget went to recall (the plain model is only 1.09-1.16 × AA) and validation overstated
    # the test ratio by up to 0.04 on Deezer; 1.04 keeps the default at or above the peer on an
    # independent split and spends the rest on bridges and equity (benchmarks/RESULTS.md).
    "min_recall_ratio": 1.04,
    "min_bridge_ratio": 2.0,  # bridge rate (community ensemble) ≥ 2 × Adamic-Adar's
    "max_gini_ratio": 0.70,  # exposure Gini ≤ 0.70 × Adamic-Adar's
    "min_exposure_ratio": 0.85,  # every sensitive attribute, and network-size tiers
}

#: The largest bridge weight tried, in units of a typical k-th best score.
MAX_BRIDGE_WEIGHT = 4.0


def equity_path(theta: float, *, k: int) -> dict:
    """The re-ranker setting that the equity price ``theta`` ∈ [0, 1] buys.

    At 0: a loose capacity (20 × the average exposure), no least-exposed places, no damping. At
    1: a capacity of the average exposure, half of each slate given to the least exposed of the
    whole preference list, and a popularity damping of 0.3. In between, the capacity falls
    geometrically and the places and damping grow linearly.

    Examples
    --------
    >>> equity_path(0.0, k=20)["capacity_multiple"], equity_path(1.0, k=20)["floor_slots"]
    (20.0, 10)
    """
    theta = float(np.clip(theta, 0.0, 1.0))
    return {
        "capacity_multiple": float(20.0 ** (1.0 - theta)),
        "floor_slots": int(round(theta * k / 2)),
        "floor_depth": PREFERENCE_DEPTH,
        "degree_penalty": 0.3 * theta,
    }


@dataclass
class Validation:
    """The validation problem: pools of members with split-off connections, and how to measure.

    Attributes
    ----------
    member_rows : (R,) int64
    pool_ids, scores, outside : (R, P) arrays of the members' scored pools
    relevant : csr (R, n) the split-off connections of each member
    communities : (n,) or (n, M) labels (an ensemble: bridging is the share that separates)
    sensitive : DataFrame of n rows (measured only; "undisclosed" a group)
    tiers : (n,) network-size tier codes
    peer_ids : (R, k) plain Adamic-Adar slates of the same members
    capacity : function of a capacity multiple → (n,) capacities
    k : int
    tiebreak : (n,) the least-exposed places' tie-break (the model's: degrees), optional
    min_group_size : int
    """

    member_rows: np.ndarray
    pool_ids: np.ndarray
    scores: np.ndarray
    outside: np.ndarray
    relevant: sp.csr_matrix
    communities: np.ndarray
    sensitive: pd.DataFrame
    tiers: np.ndarray
    peer_ids: np.ndarray
    capacity: Callable[[float], np.ndarray]
    k: int = 20
    min_group_size: int = 20
    tiebreak: np.ndarray | None = None
    _groups: dict = field(default_factory=dict, repr=False)

    def groups(self) -> dict[str, tuple[np.ndarray, int]]:
        """Codes of every equity grouping (sensitive attributes and tiers), made once."""
        if not self._groups:
            for attr in self.sensitive.columns:
                codes, uniques = pd.factorize(self.sensitive[attr].to_numpy(dtype=object))
                self._groups[attr] = (codes, len(uniques))
            self._groups["network_size"] = (np.asarray(self.tiers, np.int64), 3)
        return self._groups

    def subsample(self, max_members: int, random_state: int) -> Validation:
        if len(self.member_rows) <= max_members:
            return self
        rng = np.random.default_rng(random_state)
        pick = np.sort(rng.choice(len(self.member_rows), max_members, replace=False))
        return Validation(
            member_rows=self.member_rows[pick],
            pool_ids=self.pool_ids[pick],
            scores=self.scores[pick],
            outside=self.outside[pick],
            relevant=self.relevant[pick],
            communities=self.communities,
            sensitive=self.sensitive,
            tiers=self.tiers,
            peer_ids=self.peer_ids[pick],
            capacity=self.capacity,
            k=self.k,
            min_group_size=self.min_group_size,
            tiebreak=self.tiebreak,
        )


def slate_figures(validation: Validation, ids: np.ndarray) -> dict[str, float]:
    """Recall (per-member mean and pooled), bridge rate, exposure Gini and every exposure ratio
    of slates ``ids`` (R, k) of the validation members."""
    v = validation
    k = ids.shape[1]
    recall = m.recall_at_k(ids, v.relevant, k=k)
    n_relevant = np.diff(v.relevant.indptr)
    has = n_relevant > 0
    exposure = m.exposure_counts(ids, n_members=len(v.tiers))
    figures = {
        "recall": float(np.nanmean(recall[has])) if has.any() else 0.0,
        "recall_pooled": float(
            np.nansum(recall[has] * n_relevant[has]) / max(n_relevant.sum(), 1)
        ),
        "bridge_rate": _bridge_rate(v.member_rows, ids, v.communities),
        "exposure_gini": m.gini(exposure),
    }
    for name, (codes, n_groups) in v.groups().items():
        figures[f"exposure_ratio/{name}"] = _exposure_ratio(
            exposure, codes, n_groups, v.min_group_size
        )
    return figures


def _bridge_rate(member_rows: np.ndarray, ids: np.ndarray, communities: np.ndarray) -> float:
    """The bridge rate under one partition (n,), or the mean share of an ensemble's (n, M)
    partitions that separate each recommended pair."""
    if communities.ndim == 1:
        return m.bridge_rate(member_rows, ids, communities)
    r, j = np.nonzero(ids >= 0)
    if not len(r):
        return 0.0
    return float(1.0 - co_membership(communities, member_rows[r], ids[r, j]).mean())


def _exposure_ratio(
    exposure: np.ndarray, codes: np.ndarray, n_groups: int, min_group_size: int
) -> float:
    """:func:`recsys.metrics.exposure_ratio` with bincounts: it runs once per tried setting,
    where fairlearn's MetricFrame (used for the reported figures) costs a third of a second
    each."""
    members = np.bincount(codes, minlength=n_groups)
    got = np.bincount(codes, weights=exposure, minlength=n_groups)
    keep = members >= min_group_size
    if keep.sum() < 2 or exposure.sum() == 0:
        return float("nan")
    ratio = (got[keep] / exposure.sum()) / (members[keep] / len(codes))
    return float(ratio.min() / ratio.max()) if ratio.max() > 0 else float("nan")


def shortfall(figures: dict, peer: dict, targets: dict) -> dict[str, float]:
    """How far each bound is missed, relative to its target (0 where met; a target of 0 sets
    no bound)."""
    miss = {}
    need = targets["min_recall_ratio"] * peer["recall"]
    if need > 0:
        miss["recall"] = max(0.0, need - figures["recall"]) / need
    need = min(targets["min_bridge_ratio"] * peer["bridge_rate"], 1.0)
    if need > 0:
        miss["bridge_rate"] = max(0.0, need - figures["bridge_rate"]) / need
    cap = targets["max_gini_ratio"] * peer["exposure_gini"]
    if cap > 0:
        miss["exposure_gini"] = max(0.0, figures["exposure_gini"] - cap) / cap
    need = targets["min_exposure_ratio"]
    for name, value in figures.items():
        if name.startswith("exposure_ratio/") and np.isfinite(value) and need > 0:
            miss[name] = max(0.0, need - value) / need
    return miss


_EQUITY = ("exposure_gini",)  # with every exposure_ratio/*: the bounds the equity price buys


def _is_equity(name: str) -> bool:
    return name in _EQUITY or name.startswith("exposure_ratio/")


def tune_reranker(
    make: Callable[[dict], object],
    validation: Validation,
    *,
    targets: dict | None = None,
    fixed: dict | None = None,
    steps: int = 6,
    max_members: int = 12_000,
    random_state: int = 0,
) -> tuple[dict, dict]:
    """The re-ranker setting that meets the bounds at the least loss of recall.

    ``make(setting)`` builds the re-ranker for a setting's ``bridge_weight`` and
    ``degree_penalty`` (preference lists); the setting's ``capacity_multiple``, ``floor_slots``
    and ``floor_depth`` act in the global assignment (:func:`recsys.assign_slates`), as batch
    ranking does. ``fixed`` holds settings the caller chose (never searched). The bridge weight
    and the equity price are bisected in turn, ``steps`` halvings each (see the module
    docstring).

    Returns
    -------
    params : dict
        The chosen setting: ``bridge_weight``, ``degree_penalty``, ``capacity_multiple``,
        ``floor_slots``, ``floor_depth`` (and whatever ``fixed`` holds).
    report : dict
        The targets, the peer's, the unconstrained and the chosen figures, the chosen figures as
        ratios to the peer's, which bounds were met, which no price could meet (``infeasible``),
        and how many settings were tried.
    """
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    fixed = dict(fixed or {})
    v = validation.subsample(max_members, random_state)
    k = v.k
    peer = slate_figures(v, v.peer_ids[:, :k])
    plain_ids, _ = top_k(v.pool_ids, v.scores, k)
    base = slate_figures(v, plain_ids)
    lists: dict[tuple, object] = {}
    tried: list[tuple[dict, dict, dict]] = []

    def evaluate(bridge_weight: float, theta: float) -> tuple[dict, dict, dict]:
        setting = {"bridge_weight": float(bridge_weight), **equity_path(theta, k=k), **fixed}
        key = (setting["bridge_weight"], setting["degree_penalty"], setting.get("bound_tolerance"))
        if key not in lists:  # the preference lists do not depend on the assignment
            lists.clear()  # one at a time: 12,000 lists of 120 are ~10 MB
            reranker = make(setting)
            lists[key] = (
                reranker,
                reranker.preferences(
                    v.member_rows, v.pool_ids, v.scores, PREFERENCE_DEPTH * k, outside=v.outside
                ),
            )
        reranker, prefs = lists[key]
        ids, _ = assign_slates(
            prefs,
            k=k,
            capacity=v.capacity(setting["capacity_multiple"]),
            required=reranker.required_rows(v.member_rows),
            floor_slots=min(int(setting["floor_slots"]), k),
            floor_depth=int(setting["floor_depth"]) * k,
            tiebreak=v.tiebreak,
        )
        figures = slate_figures(v, ids)
        miss = shortfall(figures, peer, targets)
        tried.append((setting, figures, miss))
        return setting, figures, miss

    def met(miss: dict, equity: bool) -> bool:
        return all(
            value == 0
            for name, value in miss.items()
            if _is_equity(name) == equity and name != "recall"
        )

    recall_floor = targets["min_recall_ratio"] * peer["recall"]

    def bisect(price: Callable[[float], tuple], lo: float, hi: float, good) -> tuple[float, float]:
        """The last price where ``good`` fails and the first where it holds, in [lo, hi]."""
        for _ in range(steps):
            mid = (lo + hi) / 2
            if good(price(mid)):
                hi = mid
            else:
                lo = mid
        return lo, hi

    def choose(
        price: Callable[[float], tuple], hi: float, equity: bool, floor: float
    ) -> tuple[float, str]:
        """The smallest price meeting its bounds, held within the recall ``floor``; and how it
        went: ``met``, ``infeasible`` (no price meets them) or ``recall`` (they cost more recall
        than the floor allows, so the price stops where recall does)."""
        meets = lambda point: met(point[2], equity)  # noqa: E731
        if meets(price(0.0)):
            return 0.0, "met"
        status = "met"
        need = hi
        if meets(price(hi)):
            need = bisect(price, 0.0, hi, meets)[1]
        else:
            status = "infeasible"
        if price(need)[1]["recall"] >= floor:
            return need, status
        if price(0.0)[1]["recall"] < floor:
            return 0.0, "recall"
        # the largest price that keeps recall at the floor: recall falls as the price grows
        below = lambda point: point[1]["recall"] < floor  # noqa: E731
        return bisect(price, 0.0, need, below)[0], "recall"

    # The recall the bounds may spend is shared: bridges first within half of it (measured on
    # Deezer, bridges bought first took the whole budget and left exposure as unequal as
    # Adamic-Adar's), then equity within the rest, then bridges again with what equity left.
    halfway = max(recall_floor, (base["recall"] + recall_floor) / 2)
    status = {"equity": "met", "bridges": "met"}
    bridge_weight, status["bridges"] = choose(
        lambda b: evaluate(b, 0.0), MAX_BRIDGE_WEIGHT, False, halfway
    )
    theta, status["equity"] = choose(lambda t: evaluate(bridge_weight, t), 1.0, True, recall_floor)
    if status["bridges"] != "met":
        bridge_weight, status["bridges"] = choose(
            lambda b: evaluate(b, theta), MAX_BRIDGE_WEIGHT, False, recall_floor
        )
    setting, figures, miss = evaluate(bridge_weight, theta)
    unmet = [name for name, value in miss.items() if value > 0 and name != "recall"]
    why = {name: status["equity" if _is_equity(name) else "bridges"] for name in unmet}
    report = {
        "tuned": True,
        "method": "bisected prices: the bridge weight within half the recall budget, the "
        "equity price along equity_path within the recall floor, then the bridge weight again",
        "targets": targets,
        "peer": peer,
        "unconstrained": base,
        "chosen": figures,
        "ratios_to_peer": _ratios(figures, peer),
        "params": setting,
        "equity_price": theta,
        "bounds_met": {name: value == 0 for name, value in miss.items()},
        "all_bounds_met": bool(all(value == 0 for value in miss.values())),
        "infeasible": sorted(name for name, reason in why.items() if reason == "infeasible"),
        "held_by_recall": sorted(name for name, reason in why.items() if reason == "recall"),
        "recall_floor": recall_floor,
        "settings_tried": len(tried),
        "validation_members": int(len(v.member_rows)),
    }
    logger.info(
        "re-ranker tuned: %s (%d settings tried; bounds met: %s; unmet: %s)",
        setting,
        len(tried),
        report["bounds_met"],
        sorted(why) or "none",
    )
    return setting, report


def _ratios(figures: dict, peer: dict) -> dict[str, float]:
    out = {}
    for name in ("recall", "recall_pooled", "bridge_rate", "exposure_gini"):
        out[name] = figures[name] / peer[name] if peer[name] else float("nan")
    return out
