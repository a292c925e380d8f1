"""Feedback-loop simulation: what a ranking policy does to the network over rounds of
introductions.

Each round a policy ranks slates for a seeded sample of members, simulated members accept some
of the proposed introductions (:class:`AcceptanceBehaviour`), the accepted pairs become
connections, and the policy is refitted on the grown network for the next round. Tracked per
round (:func:`network_outcomes`): how unequal degrees are (Gini, Atkinson), the gap in mean
degree between the groups of each sensitive attribute, how segregated the graph is (modularity of
its re-detected communities, and the share of connections that bridge the communities found
before the first round), and how many introductions were accepted and bridged.

Common random numbers: for a given ``random_state`` every policy sees the same members sampled
in round ``r`` and the same uniform draws deciding acceptance (by slate position), so
differences between policies come from the slates, not from luck.

Pure library code: no MLflow, no files; ``experiments/simulate.py`` runs it as a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import metrics as m
from recsys._communities import detect_communities
from recsys.data import Network

__all__ = [
    "AcceptanceBehaviour",
    "RankFunction",
    "RoundOutcome",
    "SimulationResult",
    "modularity",
    "network_outcomes",
    "simulate_feedback_loop",
]

logger = logging.getLogger(__name__)

#: ``rank(member_rows, k) -> (ids (R, k) int32 padded with -1, scores (R, k) float32)``.
RankFunction = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class AcceptanceBehaviour:
    r"""How a simulated pair answers a proposed introduction.

    The probability that the introduction of ``v`` shown to ``u`` at slate position ``i``
    (0-based) becomes a connection is

    .. math:: P = \underbrace{\frac{1}{\log_2(i + 2)}}_{\text{seen}} \cdot
              \sigma\big(\beta_0 + \beta_1 \ln(1 + \mathrm{mutual}_{uv})
              + \beta_2 \cos(\mathrm{interests}_u, \mathrm{interests}_v)\big)

    — the examination model of position bias (the DCG discount, Järvelin & Kekäläinen 2002;
    ``position_bias=False`` drops it) times a logistic in mutual contacts (triadic closure) and
    the cosine similarity of interest weights (homophily of taste). The logistic is the
    probability that *both* accept: one draw per shown pair, symmetric in ``u`` and ``v``. It
    reads no sensitive attribute and none of the recommender's own scores, so every policy is
    judged by the same members. The defaults give about 5 % for strangers with nothing in
    common, 17 % with three mutual contacts, 30 % with three and similar interests.
    """

    intercept: float = -3.0
    mutual_contacts: float = 1.0
    shared_interests: float = 4.0
    position_bias: bool = True

    def probability(
        self, network: Network, u: np.ndarray, v: np.ndarray, position: np.ndarray
    ) -> np.ndarray:
        """(P,) float64 acceptance probability of each shown pair ``(u[i], v[i])`` at
        ``position[i]``.
        """
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        if u.size == 0:
            return np.zeros(0)
        adj = network.adjacency
        mutual = np.asarray(adj[u].multiply(adj[v]).sum(axis=1)).ravel()
        interests = sp.csr_matrix(network.member_interests, dtype=np.float64)
        norms = np.sqrt(np.asarray(interests.multiply(interests).sum(axis=1)).ravel())
        dot = np.asarray(interests[u].multiply(interests[v]).sum(axis=1)).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            cosine = np.where((norms[u] > 0) & (norms[v] > 0), dot / (norms[u] * norms[v]), 0.0)
        logit = (
            self.intercept
            + self.mutual_contacts * np.log1p(mutual)
            + self.shared_interests * cosine
        )
        p = 1.0 / (1.0 + np.exp(-logit))
        if self.position_bias:
            p = p / np.log2(np.asarray(position, dtype=np.float64) + 2.0)
        return p


def modularity(adjacency: sp.spmatrix, communities: np.ndarray) -> float:
    r"""Newman-Girvan modularity of a partition of an undirected graph.

    .. math:: Q = \sum_c \Big[\frac{L_c}{m} - \Big(\frac{d_c}{2m}\Big)^2\Big]

    with :math:`L_c` the connections inside community ``c``, :math:`d_c` the sum of its
    degrees and ``m`` the number of connections (Newman & Girvan, Phys. Rev. E 69, 2004).
    0.0 for a graph without connections.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> two = sp.csr_matrix(([1.0] * 4, ([0, 1, 2, 3], [1, 0, 3, 2])), shape=(4, 4))
    >>> modularity(two, np.array([0, 0, 1, 1]))
    0.5
    """
    coo = sp.coo_matrix(adjacency)
    labels = np.asarray(communities)
    two_m = float(coo.nnz)
    if two_m == 0:
        return 0.0
    _, codes = np.unique(labels, return_inverse=True)
    inside = np.bincount(
        codes[coo.row],
        weights=(codes[coo.row] == codes[coo.col]).astype(np.float64),
        minlength=codes.max() + 1,
    )
    degree = np.bincount(
        codes,
        weights=np.diff(sp.csr_matrix(adjacency).indptr).astype(np.float64),
        minlength=codes.max() + 1,
    )
    return float(inside.sum() / two_m - np.sum((degree / two_m) ** 2))


def _group_degrees(
    degrees: np.ndarray, labels: np.ndarray, *, min_group_size: int
) -> pd.DataFrame:
    groups, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes, minlength=len(groups))
    mean = np.bincount(
        codes, weights=degrees.astype(np.float64), minlength=len(groups)
    ) / np.maximum(counts, 1)
    suppressed = counts < min_group_size
    table = pd.DataFrame(
        {
            "group": groups.astype(str),
            "members": pd.array(counts, dtype="Int64"),
            "mean_degree": np.where(suppressed, np.nan, mean),
            "suppressed": suppressed,
        }
    )
    table["members"] = table["members"].mask(suppressed)
    return table


def network_outcomes(
    network: Network,
    *,
    initial_communities: np.ndarray,
    initial_degrees: np.ndarray | None = None,
    min_group_size: int = 20,
    atkinson_epsilon: float = 0.5,
    random_state: int = 0,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Structure and inequality of a network: the per-round figures of the simulation.

    Returns
    -------
    metrics : dict
        ``degree_gini``, ``degree_atkinson``, ``mean_degree``, ``small_network_share`` (members
        with fewer than 5 connections), ``modularity`` and ``communities`` (Leiden, re-detected),
        ``bridge_share`` (connections across ``initial_communities``), ``gain_gini`` (inequality
        of connections gained since ``initial_degrees``), and per sensitive attribute ``ATTR``:
        ``degree_gap/ATTR`` (largest minus smallest group mean degree) and ``degree_ratio/ATTR``
        (smallest over largest), over groups of at least ``min_group_size`` members.
    groups : DataFrame
        ``attribute, group, members, mean_degree, suppressed`` (suppressed groups without
        figures).
    """
    degrees = network.degrees.astype(np.float64)
    edges = network.connections
    found = detect_communities(network.adjacency, random_state=random_state)
    initial = np.asarray(initial_communities)
    out: dict[str, float] = {
        "mean_degree": float(degrees.mean()) if degrees.size else 0.0,
        "degree_gini": m.gini(degrees),
        "degree_atkinson": m.atkinson(degrees, epsilon=atkinson_epsilon),
        "small_network_share": float(np.mean(degrees < 5)),
        "modularity": modularity(network.adjacency, found),
        "communities": float(len(np.unique(found))),
        "bridge_share": float(np.mean(initial[edges[:, 0]] != initial[edges[:, 1]]))
        if len(edges)
        else 0.0,
    }
    if initial_degrees is not None:
        out["gain_gini"] = m.gini(np.maximum(degrees - initial_degrees, 0))
    tables = []
    for attr in network.sensitive.columns:
        labels = network.sensitive[attr].to_numpy(dtype=object).astype(str)
        table = _group_degrees(degrees, labels, min_group_size=min_group_size)
        table.insert(0, "attribute", attr)
        tables.append(table)
        shown = table.loc[~table["suppressed"], "mean_degree"].to_numpy(dtype=np.float64)
        if shown.size >= 2:
            out[f"degree_gap/{attr}"] = float(shown.max() - shown.min())
            out[f"degree_ratio/{attr}"] = (
                float(shown.min() / shown.max()) if shown.max() > 0 else float("nan")
            )
    groups = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=["attribute", "group", "members", "mean_degree", "suppressed"])
    )
    return out, groups


@dataclass(frozen=True)
class RoundOutcome:
    """The state after round ``round`` (0: before any introduction)."""

    round: int
    metrics: dict[str, float]
    groups: pd.DataFrame


@dataclass(frozen=True)
class SimulationResult:
    """``history``: one row per round (``round`` and every metric); ``groups``: group degrees per
    round; ``network``: the final network.
    """

    history: pd.DataFrame
    groups: pd.DataFrame
    network: Network
    rounds: list[RoundOutcome] = field(repr=False, default_factory=list)


def _round_rng(random_state: int, round_index: int) -> np.random.Generator:
    return np.random.default_rng([int(random_state), int(round_index)])


def simulate_feedback_loop(
    network: Network,
    policy: Callable[[Network, int], RankFunction],
    *,
    rounds: int,
    k: int = 20,
    members_per_round: int | None = None,
    behaviour: AcceptanceBehaviour = AcceptanceBehaviour(),
    min_group_size: int = 20,
    atkinson_epsilon: float = 0.5,
    random_state: int = 0,
    on_round: Callable[[RoundOutcome], None] | None = None,
) -> SimulationResult:
    """Run ``rounds`` rounds of rank → accept → connect → refit with one policy.

    Parameters
    ----------
    network : Network
        The starting network (its ``sensitive`` columns are the groups tracked).
    policy : callable ``(network, round) -> rank``
        Returns the ranking function for the round, fitted on ``network`` as it stands (round
        0 is the starting network). A policy may refit everything, or only the parts that the
        new connections change.
    rounds : int
        Rounds to run, ``>= 1``.
    k : int
        Slate size.
    members_per_round : int or None
        Members ranked per round: a fresh seeded sample each round, the same for every policy;
        ``None`` ranks everyone.
    behaviour : AcceptanceBehaviour
        Who accepts.
    min_group_size : int
        Groups smaller than this get no figures.
    atkinson_epsilon : float
    random_state : int
        Seed of the member samples and acceptance draws (common to all policies).
    on_round : callable, optional
        Called with each :class:`RoundOutcome` as soon as it is known (round 0 first).

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> from recsys import IntroductionRecommender, synthetic_network
    >>> net = synthetic_network(300, seed=0)
    >>> model = IntroductionRecommender(pool_size=40, als_iterations=2)
    >>> fit = lambda network, r: model.fit(network).rank
    >>> result = simulate_feedback_loop(net, fit, rounds=1, k=5)
    >>> result.history["round"].tolist()
    [0, 1]
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = network.n_members
    initial_communities = detect_communities(network.adjacency, random_state=random_state)
    initial_degrees = network.degrees.astype(np.float64)

    outcomes: list[RoundOutcome] = []

    def record(round_index: int, net: Network, extra: dict[str, float]) -> None:
        metrics, groups = network_outcomes(
            net,
            initial_communities=initial_communities,
            initial_degrees=initial_degrees,
            min_group_size=min_group_size,
            atkinson_epsilon=atkinson_epsilon,
            random_state=random_state,
        )
        metrics.update(extra)
        outcome = RoundOutcome(round_index, metrics, groups.assign(round=round_index))
        outcomes.append(outcome)
        if on_round is not None:
            on_round(outcome)

    record(0, network, {})
    current = network
    for r in range(rounds):
        rng = _round_rng(random_state, r)
        if members_per_round is not None and members_per_round < n:
            rows = np.sort(rng.choice(n, members_per_round, replace=False)).astype(np.int64)
        else:
            rows = np.arange(n, dtype=np.int64)
        draws = rng.random((len(rows), k))  # drawn before ranking: identical for every policy
        rank = policy(current, r)
        ids, _ = rank(rows, k)
        ids = np.asarray(ids)[:, :k]
        ri, pos = np.nonzero(ids >= 0)
        u, v = rows[ri], ids[ri, pos].astype(np.int64)
        p = behaviour.probability(current, u, v, pos)
        accepted = (draws[ri, pos] < p) & (u != v)
        pairs = np.sort(np.column_stack([u[accepted], v[accepted]]), axis=1)
        if len(pairs):
            known = np.asarray(current.adjacency[pairs[:, 0], pairs[:, 1]]).ravel() != 0
            pairs = np.unique(pairs[~known], axis=0)
        bridges = (
            int(np.sum(initial_communities[pairs[:, 0]] != initial_communities[pairs[:, 1]]))
            if len(pairs)
            else 0
        )
        current = current.with_connections(
            np.vstack([current.connections, pairs]).astype(np.int64)
        )
        logger.info(
            "round %d: %d members ranked, %d introductions shown, %d accepted (%d bridging)",
            r + 1,
            len(rows),
            len(u),
            len(pairs),
            bridges,
        )
        record(
            r + 1,
            current,
            {
                "members_ranked": float(len(rows)),
                "introductions_shown": float(len(u)),
                "accepted": float(len(pairs)),
                "acceptance_rate": float(len(pairs) / len(u)) if len(u) else 0.0,
                "accepted_bridge_share": float(bridges / len(pairs)) if len(pairs) else 0.0,
            },
        )
    history = pd.DataFrame([{"round": o.round, **o.metrics} for o in outcomes])
    groups = pd.concat([o.groups for o in outcomes], ignore_index=True)
    return SimulationResult(history=history, groups=groups, network=current, rounds=outcomes)
