"""The built-in synthetic network: members, interests and connections with planted structure.

The generator plants what the rest of the project is meant to find or correct, so that tests and
demo runs know the answer, and forms connections the way social networks form them, so that what
a recommender learns there is what it would learn on real data:

- **communities** of varied size, with a share ``homophily`` of connections inside them;
- **tastes**: each member has a place on a ring of tastes, on their community's arc;
- **interests** that follow communities and tastes (each community has its own pool of niche
  interests, and most of a member's niche draws fall near their taste) on top of globally
  popular ones (Zipf-like popularity);
- **connections in two layers**. The base layer: each member makes ties in proportion to their
  activity (heavy tailed: a power-law tail of exponent ``degree_exponent`` over a log-normal
  body), to partners drawn by a softened activity (``degree_preference``; 1 is Chung-Lu), inside
  the community mostly near in taste (``interest_homophily``), the most active reaching across
  communities. Then a share ``triadic_closure`` of the connections forms in waves by closing
  triangles: a member meets a friend's friend, more often one close in taste and of the same
  sensitive group. Why: in a Chung-Lu network (this generator before issue 17) a connection is
  drawn in proportion to both members' degrees and nothing else, so held-out connections go to
  the most popular candidates whatever the structure, recall comes from ranking by popularity,
  and spreading exposure costs recall by construction. Here, as on Deezer and Facebook100, they
  go mostly to friends of friends who share tastes; Adamic-Adar recall, clustering and the
  spread of degrees sit between the two real networks' (``benchmarks/synthetic_bench.py``,
  ``benchmarks/RESULTS.md``);
- a two-valued sensitive attribute ``gender`` (``"a"`` majority, ``"b"`` minority) whose minority
  concentrates in some communities and closes triangles across groups less often, so that
  connections are assortative by attribute, with a share of members who did not disclose it;
- a non-sensitive ``region`` correlated with community, and ``created_at`` times over two years:
  members join over time, a connection comes after both joined and the later its wave, so that a
  time-based split holds out mostly the triangles closed last, as a growing network would.

Everything is vectorised numpy (the only Python loops run over rounds of sampling, never over
members or connections): a million members with about ten million connections and twenty
million interest rows take under half a minute and ~2 GiB.
Written by hand because no library we depend on plants communities, attributes and interests
together; ``igraph``'s SBM / Chung-Lu generators build per-edge Python objects and would not
scale to the sizes we benchmark.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from recsys._io import write_frame

__all__ = ["generate_tables", "write_synthetic"]

logger = logging.getLogger(__name__)

#: Connection times span two years from 2023-01-01 00:00:00 UTC (epoch seconds).
TIME_START = 1_672_531_200
TIME_SPAN = 2 * 365 * 24 * 3600

_NICHE_SHARE = 0.55  # share of a member's interest draws taken from their community's pool
_POPULAR_ZIPF = 1.0  # Zipf exponent of the global popularity of popular interests
_NICHE_ZIPF = 0.7  # Zipf exponent inside a community's pool of niche interests
_REGION_LOYALTY = 0.8  # share of members living in their community's home region
_MENTOR_SHARE = 0.02  # members with a finite introduction capacity
_MAX_ROUNDS = 30  # top-up rounds of edge sampling before settling for fewer edges
_MAX_DRAWS = 1 << 23  # proposals per round, which bounds the memory of a round (~0.5 GiB)
# Connection formation (calibrated by benchmarks/synthetic_bench.py, see benchmarks/RESULTS.md):
_ACTIVITY_SPREAD = 1.1  # log-normal spread of activity below its power-law tail
_MAX_DEGREE_RATIO = 50.0  # largest activity, in multiples of the mean degree
_HUB_ROOM = 0.15  # share of their own community a member's inside ties may take at most
_TASTE_SCALE = 40.0  # length scale of taste homophily, in members along the taste ring
_TASTE_SPREAD = 20.0  # spread of the niche interests drawn near a member's taste, in members
_TASTE_DRAW_SHARE = 0.8  # share of niche interest draws taken near the member's taste
_CLOSURE_WAVES = 4  # waves of triadic closure, each over the network the earlier ones left
_GROUP_AVERSION = 0.3  # a friend's friend across the sensitive group is accepted this much
# less often, times attribute_homophily


# ----------------------------------------------------------------------------------------------
# Small vectorised helpers
# ----------------------------------------------------------------------------------------------


def _string_series(
    vocabulary: pa.Array, codes: np.ndarray, *, missing: np.ndarray | None = None
) -> pd.Series:
    """``vocabulary[codes]`` as a pandas string Series, built in Arrow without Python objects.

    Going through Python ``str`` objects costs ~5 s per 10M rows; ``take`` on an Arrow array
    costs ~0.3 s. ``missing`` marks rows that become NaN.
    """
    indices = pa.array(codes, mask=missing) if missing is not None else pa.array(codes)
    taken = vocabulary.take(indices)
    try:
        dtype = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str" dtype
    except TypeError:  # pandas < 2.3: plain object strings
        return pd.Series(taken.to_pandas(), copy=False)
    return pd.Series(taken, dtype=dtype)


def _prefixed_names(prefix: str, count: int, *, pad: bool) -> pa.Array:
    """``prefix + i`` for ``i < count``; ``pad`` zero-pads to the width of ``count - 1``."""
    numbers = np.arange(count).astype(str)
    if pad:
        numbers = np.char.zfill(numbers, len(str(max(count - 1, 0))))
    return pa.array(np.char.add(prefix, numbers), type=pa.large_string())


def _bounded_zipf(u: np.ndarray, size: np.ndarray | int, exponent: float) -> np.ndarray:
    """Ranks in ``[0, size)`` with probability roughly ``(rank + 1) ** -exponent``.

    Inverse CDF of the continuous power law on ``[1, size + 1)``, so that ``size`` may differ per
    draw (one pool per community) and no per-pool table is needed.
    """
    size = np.asarray(size, dtype=np.float64)
    if exponent == 1.0:
        x = np.exp(u * np.log1p(size))
    else:
        one_minus = 1.0 - exponent
        x = (1.0 + u * ((size + 1.0) ** one_minus - 1.0)) ** (1.0 / one_minus)
    rank = np.floor(x).astype(np.int64) - 1
    return np.clip(rank, 0, np.maximum(size.astype(np.int64) - 1, 0))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting: numpy 2.4's hash-based ``np.unique`` is ~50x slower here."""
    values = np.sort(values)
    if len(values) == 0:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _community_sizes(rng: np.random.Generator, n_members: int, n_communities: int) -> np.ndarray:
    """Varied community sizes (log-normal shares) that sum to ``n_members``, each at least 2."""
    shares = rng.lognormal(mean=0.0, sigma=0.6, size=n_communities)
    shares /= shares.sum()
    spare = n_members - 2 * n_communities
    sizes = 2 + np.floor(shares * spare).astype(np.int64)
    remainder = n_members - int(sizes.sum())
    if remainder:
        sizes[rng.choice(n_communities, size=remainder, replace=False)] += 1
    return sizes


def _expected_degrees(
    rng: np.random.Generator, n: int, *, mean_degree: float, degree_exponent: float
) -> np.ndarray:
    """Activity weights: a power-law tail of exponent ``degree_exponent``, mean ``mean_degree``.

    A Pareto draw times a log-normal factor (spread ``_ACTIVITY_SPREAD``): the tail keeps the
    exponent, and the log-normal spreads the body below the Pareto minimum, so that many members
    have a few connections, as in real networks. Capped at ``_MAX_DEGREE_RATIO`` times the mean
    (the largest degree is 26 times the mean on Deezer, 14 times on Georgetown15; ties are made
    and received, so the largest degree comes out at about 20 times) and at a quarter of the
    members.
    """
    # Pareto with tail index alpha = exponent - 1: P(degree > k) ~ k ** -(exponent - 1).
    raw = (1.0 - rng.random(n)) ** (-1.0 / (degree_exponent - 1.0))
    raw *= np.exp(_ACTIVITY_SPREAD * rng.standard_normal(n))
    cap = min(_MAX_DEGREE_RATIO * mean_degree, (n - 1.0) / 4)
    scale = mean_degree / raw.mean()
    for _ in range(30):  # fixed point: rescale until the capped mean hits mean_degree
        weights = np.minimum(raw * scale, cap)
        mean = weights.mean()
        if abs(mean - mean_degree) < 1e-3 * mean_degree:
            break
        scale *= mean_degree / mean
    return np.minimum(raw * scale, cap)


def _inside_shares(weights: np.ndarray, room: np.ndarray, homophily: float) -> np.ndarray:
    """Each member's share of base-layer ties inside their community, averaging ``homophily``.

    The most active members would fill their community (``room``: the others in it) if they
    kept the planted share, so their share is capped at ``_HUB_ROOM * room / weight`` and the
    others' raised to keep the activity-weighted mean at ``homophily`` (bisection on the
    uncapped share). Hubs then reach across communities, as in real networks.
    """
    limit = _HUB_ROOM * room / np.maximum(weights, 1e-12)
    total = weights.sum()
    low, high = homophily, 1.0
    if (weights * np.minimum(high, limit)).sum() <= homophily * total:
        return np.minimum(high, limit)
    for _ in range(40):
        mid = 0.5 * (low + high)
        if (weights * np.minimum(mid, limit)).sum() < homophily * total:
            low = mid
        else:
            high = mid
    return np.minimum(high, limit)


def _tastes(rng: np.random.Generator, community: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each member's place on the taste ring ``[0, 1)``, uniform on their community's arc.

    Communities hold consecutive arcs in proportion to their size (the same arcs their niche
    interest pools hold), so members lie evenly around the ring: a distance ``d`` on it spans
    about ``d * n`` members, whatever the network's size.
    """
    share = sizes / len(community)
    start = np.cumsum(share) - share
    return start[community] + rng.random(len(community)) * share[community]


def _taste_distance(taste: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance around the taste ring between members ``a`` and ``b``, in members."""
    d = np.abs(taste[a] - taste[b])
    return np.minimum(d, 1.0 - d) * len(taste)


class _WeightedSampler:
    """Draw members with probability proportional to their weight: globally, within a community,
    or near a member's taste within their community.

    Members are laid out community by community, by taste inside each; one cumulative sum serves
    every kind of draw (``np.searchsorted`` on it, clipped to the community's block against
    rounding at its edges).
    """

    def __init__(self, weights: np.ndarray, community: np.ndarray, taste: np.ndarray) -> None:
        self.community = community
        self.order = np.lexsort((taste, community))
        self.place = np.empty_like(self.order)
        self.place[self.order] = np.arange(len(self.order))
        self.cumulative = np.cumsum(weights[self.order])
        self.sizes = np.bincount(community)
        self.block_end = np.cumsum(self.sizes)
        self.block_start = self.block_end - self.sizes
        self.weight_end = self.cumulative[self.block_end - 1]
        self.weight_start = np.concatenate([[0.0], self.weight_end[:-1]])

    def globally(
        self, rng: np.random.Generator, count: int, *, ascending: bool = False
    ) -> np.ndarray:
        """``count`` weighted draws; with ``ascending`` they come sorted in block order.

        Sorted draws are much faster: sorted uniforms (normalised sums of exponential spacings,
        O(count)) make ``searchsorted`` walk the cumulative sum in order instead of missing the
        cache on every draw (0.4 s instead of 5 s for 10M draws over 1M members).
        """
        if ascending:
            spacing = np.cumsum(rng.standard_exponential(count + 1))
            u = spacing[:-1] * (self.cumulative[-1] / spacing[-1])
        else:
            u = rng.random(count) * self.cumulative[-1]
        position = np.searchsorted(self.cumulative, u, side="right")
        return self.order[np.minimum(position, len(self.order) - 1)]

    def within(self, rng: np.random.Generator, communities: np.ndarray) -> np.ndarray:
        start, end = self.weight_start[communities], self.weight_end[communities]
        return self._in_block(communities, start + rng.random(len(communities)) * (end - start))

    def near(self, rng: np.random.Generator, members: np.ndarray, scale: float) -> np.ndarray:
        """Weighted draws in each member's community at a Laplace offset in taste order.

        The offset has scale ``scale`` members of the community's mean weight and wraps around
        the community's block, so a small community is drawn from almost evenly.
        """
        c = self.community[members]
        start, end = self.weight_start[c], self.weight_end[c]
        span = end - start
        offset = rng.laplace(0.0, scale, len(members)) * (span / self.sizes[c])
        u = start + np.mod(self.cumulative[self.place[members]] - start + offset, span)
        return self._in_block(c, u)

    def _in_block(self, communities: np.ndarray, u: np.ndarray) -> np.ndarray:
        position = np.searchsorted(self.cumulative, u, side="right")
        first, last = self.block_start[communities], self.block_end[communities] - 1
        return self.order[np.clip(position, first, last)]


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` (sorted: the search then walks the array in order) is present."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[position] == keys


def _distinct_pairs(
    rng: np.random.Generator,
    draw: Callable[[int], tuple[np.ndarray, np.ndarray]],
    target: int,
    n: int,
    *,
    existing: np.ndarray,
    kind: str,
) -> np.ndarray:
    """``target`` distinct new pairs as sorted keys ``a * n + b`` (``a < b``) from ``draw``.

    ``draw(count)`` proposes up to ``count`` pairs (self-loops and pairs of the wrong kind
    already dropped); pairs in ``existing`` (sorted keys) or drawn before are dropped, and the
    shortfall is drawn again in vectorised rounds. A random excess is dropped at the end.
    """
    keys = np.empty(0, dtype=np.int64)
    accept_rate = 1.0
    for _ in range(_MAX_ROUNDS):
        missing = target - len(keys)
        if missing <= 0:
            break
        draws = min(int(missing / max(accept_rate, 0.01) * 1.05) + 16, _MAX_DRAWS)
        a, b = draw(draws)
        new = _sorted_unique(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
        del a, b
        new = new[~(_contains(existing, new) | _contains(keys, new))]
        keys = np.sort(np.concatenate([keys, new]), kind="stable")  # merges two sorted runs
        accept_rate = max(len(new) / draws, 1e-3)
    if len(keys) > target:
        keys = np.delete(keys, rng.choice(len(keys), size=len(keys) - target, replace=False))
    elif len(keys) < target:
        logger.warning(
            "synthetic network: only %d of %d %s connections could be drawn",
            len(keys),
            target,
            kind,
        )
    return keys


def _attach_isolated(
    rng: np.random.Generator,
    sampler: _WeightedSampler,
    community: np.ndarray,
    keys: np.ndarray,
    homophily: float,
) -> np.ndarray:
    """Keys that give each member without a connection one, inside their community w.p. h."""
    n = len(community)
    degree = np.bincount(np.concatenate([keys // n, keys % n]), minlength=n)
    lonely = np.flatnonzero(degree == 0)
    if len(lonely) == 0:
        return np.empty(0, dtype=np.int64)
    partner = np.full(len(lonely), -1, dtype=np.int64)
    for _ in range(10):
        todo = np.flatnonzero(partner < 0)
        if len(todo) == 0:
            break
        who = lonely[todo]
        inside = rng.random(len(todo)) < homophily
        pick = sampler.globally(rng, len(todo))
        pick[inside] = sampler.within(rng, community[who[inside]])
        partner[todo] = np.where(pick != who, pick, -1)
    stuck = partner < 0  # ten self-draws in a row: fall back to the next member
    partner[stuck] = (lonely[stuck] + 1) % n
    a, b = np.minimum(lonely, partner), np.maximum(lonely, partner)
    extra = _sorted_unique(a.astype(np.int64) * n + b)  # two lonely members may pick each other
    logger.debug("synthetic network: attached %d members without connections", len(lonely))
    return extra


def _neighbour_lists(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``indptr``, ``indices`` of the undirected pairs ``keys`` (neighbours in any order).

    SciPy's COO-to-CSR conversion is a linear counting sort; marking the COO canonical skips
    the per-row sort of indices that a random neighbour does not need (20M entries on the
    loaded 2-core machine: 1.3 s instead of 2.4 s; ``np.argsort`` took 10 s).
    """
    a, b = keys // n, keys % n
    rows = np.concatenate([a, b]).astype(np.int32)
    cols = np.concatenate([b, a]).astype(np.int32)
    matrix = sp.coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    matrix.has_canonical_format = True  # no duplicates; unsorted rows are fine
    csr = matrix.tocsr()
    return csr.indptr.astype(np.int64), csr.indices


def _close_triangles(
    rng: np.random.Generator,
    proposers: _WeightedSampler,
    keys: np.ndarray,
    target: int,
    *,
    community: np.ndarray,
    taste: np.ndarray,
    minority: np.ndarray,
    homophily: float,
    interest_homophily: float,
    attribute_homophily: float,
) -> np.ndarray:
    """``target`` new pairs, each a member and a friend of a friend (sorted keys).

    A proposer ``u`` (drawn by activity) walks to a random friend ``w`` and on to a random
    friend ``v`` of ``w``; the walk itself prefers well-connected ``v`` (in proportion to their
    degree, as in real networks), and ``u`` accepts ``v`` with a probability that falls with their
    distance in taste (weight ``interest_homophily``) and across the sensitive group (weight
    ``attribute_homophily``). Accepted pairs inside and across communities are then thinned so
    that a share ``homophily`` lies inside, as in the base layer.
    """
    n = len(community)
    indptr, indices = _neighbour_lists(keys, n)
    degree = np.diff(indptr)
    across_factor = 1.0 - _GROUP_AVERSION * attribute_homophily

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        u = proposers.globally(rng, count, ascending=True)
        u = u[degree[u] > 0]
        w = indices[indptr[u] + (rng.random(len(u)) * degree[u]).astype(np.int64)]
        v = indices[indptr[w] + (rng.random(len(w)) * degree[w]).astype(np.int64)]
        ok = u != v
        u, v = u[ok], v[ok]
        p = (1.0 - interest_homophily) + interest_homophily * np.exp(
            -_taste_distance(taste, u, v) / _TASTE_SCALE
        )
        p[minority[u] != minority[v]] *= across_factor
        same = community[u] == community[v]
        inside, across = p[same].sum(), p[~same].sum()
        if inside > 0 and across > 0:  # thin the side above its planted share
            if inside * (1.0 - homophily) > across * homophily:
                p[same] *= homophily * across / ((1.0 - homophily) * inside)
            else:
                p[~same] *= (1.0 - homophily) * inside / (homophily * across)
        keep = rng.random(len(u)) < p
        return u[keep], v[keep]

    return _distinct_pairs(rng, draw, target, n, existing=keys, kind="friend-of-friend")


def _form_connections(
    rng: np.random.Generator,
    community: np.ndarray,
    sizes: np.ndarray,
    weights: np.ndarray,
    taste: np.ndarray,
    minority: np.ndarray,
    *,
    mean_degree: float,
    homophily: float,
    triadic_closure: float,
    interest_homophily: float,
    degree_preference: float,
    attribute_homophily: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs as keys ``a * n + b`` (``a < b``) and the wave each formed in.

    Wave 0 is the base layer: an initiator drawn by activity ``weights`` picks a partner by
    ``weights ** degree_preference`` — inside their community (a share ``homophily`` of the
    ties, less for the most active: ``_inside_shares``), there near their taste with probability
    ``interest_homophily``; else anywhere outside it — and members left without a connection
    get one. Waves ``1.._CLOSURE_WAVES`` close triangles over
    the network formed so far, a share ``triadic_closure`` of the connections in all.
    """
    n = len(community)
    initiators = _WeightedSampler(weights, community, taste)
    partners = _WeightedSampler(weights**degree_preference, community, taste)
    inside_share = _inside_shares(weights, sizes[community] - 1.0, homophily)
    inside_initiators = _WeightedSampler(weights * inside_share, community, taste)
    across_initiators = _WeightedSampler(weights * (1.0 - inside_share), community, taste)
    n_edges = int(round(n * mean_degree / 2))
    possible_inside = int((sizes * (sizes - 1) // 2).sum())
    possible_across = n * (n - 1) // 2 - possible_inside
    n_base = n_edges - int(round(triadic_closure * n_edges))
    # At most half of the possible pairs of each kind, so that rejection sampling converges;
    # a single community (no pair across) puts all connections inside.
    target_across = min(n_base - int(round(homophily * n_base)), possible_across // 2)
    target_inside = min(n_base - target_across, possible_inside // 2)

    def draw_inside(count: int) -> tuple[np.ndarray, np.ndarray]:
        a = inside_initiators.globally(rng, count, ascending=True)
        local = rng.random(count) < interest_homophily
        b = np.empty_like(a)
        b[local] = partners.near(rng, a[local], _TASTE_SCALE)
        b[~local] = partners.within(rng, community[a[~local]])
        ok = a != b
        return a[ok], b[ok]

    def draw_across(count: int) -> tuple[np.ndarray, np.ndarray]:
        a = across_initiators.globally(rng, count, ascending=True)
        b = partners.globally(rng, count)
        ok = community[a] != community[b]
        return a[ok], b[ok]

    none = np.empty(0, dtype=np.int64)
    inside = _distinct_pairs(rng, draw_inside, target_inside, n, existing=none, kind="inside")
    across = _distinct_pairs(rng, draw_across, target_across, n, existing=inside, kind="across")
    base = np.sort(np.concatenate([inside, across]))
    del inside, across
    base = np.sort(
        np.concatenate([base, _attach_isolated(rng, partners, community, base, homophily)])
    )
    waves = [base]
    keys = base
    n_closure = max(n_edges - len(base), 0)
    for wave in range(_CLOSURE_WAVES):
        target = (wave + 1) * n_closure // _CLOSURE_WAVES - wave * n_closure // _CLOSURE_WAVES
        if target == 0 or len(keys) == 0:
            continue
        new = _close_triangles(
            rng,
            initiators,
            keys,
            target,
            community=community,
            taste=taste,
            minority=minority,
            homophily=homophily,
            interest_homophily=interest_homophily,
            attribute_homophily=attribute_homophily,
        )
        waves.append(new)
        keys = np.sort(np.concatenate([keys, new]), kind="stable")  # merges two sorted runs
    wave_of = np.repeat(np.arange(len(waves)), [len(w) for w in waves])
    return np.concatenate(waves), wave_of


def _connection_times(
    rng: np.random.Generator,
    a: np.ndarray,
    b: np.ndarray,
    wave: np.ndarray,
    n_members: int,
) -> np.ndarray:
    """Epoch seconds: members join over the first 90% of the span; a connection comes later,
    the later the wave it formed in.

    Wave ``w`` takes the slice of the time left after both members joined that its share of the
    connections would take at an even pace, so the newest connections are mostly triangles
    closed last, as in a growing network.
    """
    joined = rng.random(n_members) ** 0.7 * 0.9  # more members join later: the network grows
    start = np.maximum(joined[a], joined[b])
    counts = np.bincount(wave)
    before = (np.cumsum(counts) - counts) / len(wave)
    position = before[wave] + rng.random(len(a)) * (counts / len(wave))[wave]
    fraction = start + position * (1.0 - start)
    return TIME_START + (fraction * TIME_SPAN).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def generate_tables(
    n_members: int,
    *,
    seed: int = 0,
    n_communities: int | None = None,
    mean_degree: float = 20.0,
    homophily: float = 0.85,
    mean_interests: float = 20.0,
    n_interests: int | None = None,
    minority_share: float = 0.3,
    attribute_homophily: float = 0.7,
    undisclosed_share: float = 0.1,
    degree_exponent: float = 2.5,
    triadic_closure: float = 0.2,
    interest_homophily: float = 0.85,
    degree_preference: float = 0.5,
    with_times: bool = True,
) -> dict[str, pd.DataFrame]:
    """Generate a synthetic network with planted communities, in the project's input layout.

    Parameters
    ----------
    n_members : int
        Number of members, at least 2 (and at least twice ``n_communities``).
    seed : int
        Seed of ``np.random.default_rng``; the same seed gives the same tables.
    n_communities : int, optional
        Number of planted communities. Default ``max(4, n_members // 250)`` (about 250 members
        each, the size of the communities Leiden finds in the Deezer network), at most
        ``n_members // 2``. Sizes vary (log-normal shares).
    mean_degree : float
        Mean number of connections per member (met exactly unless the network is too small
        to hold that many distinct pairs).
    homophily : float
        Share of connections inside a community, in ``[0, 1]``.
    mean_interests : float
        Mean number of distinct interests per member (log-normal counts, heavy tailed);
        a small vocabulary or community pool can give fewer.
    n_interests : int, optional
        Size of the interest vocabulary. Default ``max(200, min(n_members // 4, 100_000))``;
        a fifth are globally popular, the rest are split into one niche pool per community.
    minority_share : float
        Expected share of members with ``gender == "b"``, in ``[0, 1]``.
    attribute_homophily : float
        How much the minority concentrates in some communities, in ``[0, 1]``: 0 spreads it
        evenly (no assortativity beyond chance), 1 fills whole communities with it.
    undisclosed_share : float
        Share of members whose ``gender`` is missing (NaN), in ``[0, 1)``.
    degree_exponent : float
        Power-law exponent of the members' activity (how many connections they make), greater
        than 2.
    triadic_closure : float
        Share of connections formed by closing triangles (a member meets a friend's friend),
        in ``[0, 1)``; 0 leaves only the base layer.
    interest_homophily : float
        Strength of the preference for partners close in taste, in ``[0, 1]``: the share of
        base-layer partners inside a community drawn near the member's taste, and the weight of
        taste in accepting a friend's friend. 0 makes taste irrelevant to connections.
    degree_preference : float
        Exponent of the partner's activity in choosing a base-layer partner, in ``[0, 1]``:
        1 draws both ends by activity (Chung-Lu), smaller values soften the pull of the
        well-connected.
    with_times : bool
        Whether connections get a ``created_at`` column.

    Returns
    -------
    dict of str to DataFrame
        ``"members"``: ``member_id`` (str, ``"u"`` + zero-padded row number), ``gender``
        (``"a"``, ``"b"`` or NaN), ``region`` (str), ``planted_community`` (int64, the planted
        community — for tests and evaluation, not sensitive), ``open_to_intros`` (bool, ~97%
        true), ``plus_one`` (bool, ~30% true), ``capacity`` (float64, NaN except ~2% "mentors"
        with 5–50).
        ``"interests"``: ``member_id``, ``interest`` (``"topic:123"``), ``weight`` (float64 play
        counts 1–5); each (member, interest) pair once.
        ``"connections"``: ``member_a``, ``member_b`` (each undirected pair once, no self-loops,
        every member in at least one) and, with ``with_times``, ``created_at`` (int64 epoch
        seconds over 2023–2024); sorted by ``created_at``.

    Examples
    --------
    >>> tables = generate_tables(1000, seed=1)
    >>> sorted(tables)
    ['connections', 'interests', 'members']
    >>> len(tables["members"])
    1000
    >>> tables["members"]["member_id"].iloc[17]
    'u017'
    """
    n = int(n_members)
    if n < 2:
        raise ValueError(f"n_members must be at least 2, got {n_members}")
    if n_communities is None:
        n_communities = min(max(4, n // 250), n // 2)
    if not 1 <= n_communities <= n // 2:
        raise ValueError(
            f"n_communities must be between 1 and n_members // 2 = {n // 2}, got {n_communities}"
        )
    for name, value in [
        ("homophily", homophily),
        ("minority_share", minority_share),
        ("attribute_homophily", attribute_homophily),
        ("interest_homophily", interest_homophily),
        ("degree_preference", degree_preference),
    ]:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if not 0.0 <= triadic_closure < 1.0:
        raise ValueError(f"triadic_closure must be in [0, 1), got {triadic_closure}")
    if not 0.0 <= undisclosed_share < 1.0:
        raise ValueError(f"undisclosed_share must be in [0, 1), got {undisclosed_share}")
    if not mean_degree > 0:
        raise ValueError(f"mean_degree must be positive, got {mean_degree}")
    if not mean_interests >= 1:
        raise ValueError(f"mean_interests must be at least 1, got {mean_interests}")
    if not degree_exponent > 2:
        raise ValueError(f"degree_exponent must be greater than 2, got {degree_exponent}")
    if n_interests is None:
        n_interests = max(200, min(n // 4, 100_000))
    if n_interests < 2:
        raise ValueError(f"n_interests must be at least 2, got {n_interests}")

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    k = int(n_communities)

    # Communities: varied sizes, members assigned at random (ids say nothing about community).
    sizes = _community_sizes(rng, n, k)
    community = rng.permutation(np.repeat(np.arange(k), sizes))

    # Sensitive attribute: community c has minority propensity (1 - ah) * p + ah * t_c, where
    # t_c in [0, 1] fills communities (in random order) with the minority up to share p.
    block = rng.permutation(k)
    share = sizes[block] / n
    before = np.cumsum(share) - share
    fill = np.empty(k)
    fill[block] = np.clip((minority_share - before) / share, 0.0, 1.0)
    propensity = (1.0 - attribute_homophily) * minority_share + attribute_homophily * fill
    is_minority = rng.random(n) < propensity[community]
    undisclosed = rng.random(n) < undisclosed_share

    # Connections: a base layer by activity, community and taste, then waves of triadic closure.
    taste = _tastes(rng, community, sizes)
    weights = _expected_degrees(rng, n, mean_degree=mean_degree, degree_exponent=degree_exponent)
    keys, wave = _form_connections(
        rng,
        community,
        sizes,
        weights,
        taste,
        is_minority,
        mean_degree=mean_degree,
        homophily=homophily,
        triadic_closure=triadic_closure,
        interest_homophily=interest_homophily,
        degree_preference=degree_preference,
        attribute_homophily=attribute_homophily,
    )
    del weights
    member_a, member_b = keys // n, keys % n
    del keys
    if with_times:
        created_at = _connection_times(rng, member_a, member_b, wave, n)
        order = np.argsort(created_at, kind="stable")
    else:
        created_at = None
        order = rng.permutation(len(member_a))
    del wave
    member_a, member_b = member_a[order], member_b[order]

    # Region: each community has a home region most of its members live in.
    n_regions = int(min(max(3, k // 4 + 2), 50))
    home = rng.integers(0, n_regions, size=k)
    region = np.where(
        rng.random(n) < _REGION_LOYALTY, home[community], rng.integers(0, n_regions, size=n)
    )

    capacity = np.full(n, np.nan)
    mentors = rng.random(n) < _MENTOR_SHARE
    capacity[mentors] = rng.integers(5, 51, size=int(mentors.sum())).astype(np.float64)

    member_names = _prefixed_names("u", n, pad=True)
    members = pd.DataFrame(
        {
            "member_id": _string_series(member_names, np.arange(n)),
            "gender": _string_series(
                pa.array(["a", "b"], type=pa.large_string()),
                is_minority.astype(np.int64),
                missing=undisclosed,
            ),
            "region": _string_series(
                _prefixed_names("r", n_regions, pad=True), region.astype(np.int64)
            ),
            "planted_community": community.astype(np.int64),
            "open_to_intros": rng.random(n) < 0.97,
            "plus_one": rng.random(n) < 0.3,
            "capacity": capacity,
        }
    )

    connections = pd.DataFrame(
        {
            "member_a": _string_series(member_names, member_a),
            "member_b": _string_series(member_names, member_b),
        }
    )
    if with_times:
        connections["created_at"] = created_at[order]
    del member_a, member_b, created_at, order

    interests = _interest_table(
        rng,
        community,
        sizes,
        taste,
        member_names,
        mean_interests=mean_interests,
        n_interests=n_interests,
    )

    n_conn = len(connections)
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "synthetic network: %d members, %d communities, %d connections (mean degree %.1f), "
            "%d interest rows, seed %d, in %.2f s",
            n,
            k,
            n_conn,
            2 * n_conn / n,
            len(interests),
            seed,
            time.perf_counter() - started,
        )
    return {"members": members, "interests": interests, "connections": connections}


def _interest_table(
    rng: np.random.Generator,
    community: np.ndarray,
    sizes: np.ndarray,
    taste: np.ndarray,
    member_names: pa.Array,
    *,
    mean_interests: float,
    n_interests: int,
) -> pd.DataFrame:
    """Member × interest rows: niche draws from the community's pool, the rest Zipf-popular.

    A share ``_TASTE_DRAW_SHARE`` of the niche draws is taken near the member's taste instead
    (normal, spread ``_TASTE_SPREAD`` members), which may reach a neighbouring community's pool:
    members close in taste share niche interests.
    """
    n = len(community)
    n_popular = max(1, n_interests // 5)
    n_niche = n_interests - n_popular
    # Pool of community c: niche topics [pool_start, pool_start + pool_size) (mod n_niche),
    # sized by community size; tiny vocabularies make neighbouring communities share topics.
    share = sizes / n
    pool_start = np.floor((np.cumsum(share) - share) * n_niche).astype(np.int64)
    pool_size = np.maximum(np.floor(np.cumsum(share) * n_niche).astype(np.int64) - pool_start, 1)

    sigma = 0.8
    counts = rng.lognormal(np.log(mean_interests) - sigma**2 / 2, sigma, size=n)
    counts = np.clip(np.rint(counts), 1, min(n_interests // 2, 20 * mean_interests))
    counts = counts.astype(np.int64)
    # Draw a third more than wanted, since popular draws repeat, then keep `counts` distinct ones.
    who = np.repeat(np.arange(n, dtype=np.int64), np.ceil(counts * 1.35).astype(np.int64) + 1)
    m = len(who)
    niche = rng.random(m) < _NICHE_SHARE
    u = rng.random(m)
    topic = _bounded_zipf(u, n_popular, _POPULAR_ZIPF)
    c = community[who[niche]]
    topic[niche] = n_popular + (
        pool_start[c] + _bounded_zipf(u[niche], pool_size[c], _NICHE_ZIPF)
    ) % max(n_niche, 1)
    local = niche & (rng.random(m) < _TASTE_DRAW_SHARE)
    spot = taste[who[local]] + rng.normal(0.0, _TASTE_SPREAD / n, int(local.sum()))
    topic[local] = n_popular + np.floor(spot * n_niche).astype(np.int64) % max(n_niche, 1)
    del u, niche, c, local, spot
    # Shuffle topic labels so a topic's number says nothing about its popularity or pool, and
    # sort each member's topics in an order of their own (labels rotated by a per-member offset)
    # so that trimming to `counts` keeps a random subset of the distinct draws.
    topic = rng.permutation(n_interests)[topic]
    offset = rng.integers(0, n_interests, size=n)
    keys = _sorted_unique(who * n_interests + (topic + offset[who]) % n_interests)
    del who, topic
    who, rotated = keys // n_interests, keys % n_interests
    del keys
    group_start = np.concatenate([[0], np.cumsum(np.bincount(who, minlength=n))[:-1]])
    keep = np.arange(len(who)) - group_start[who] < counts[who]
    who = who[keep]
    topic = (rotated[keep] - offset[who]) % n_interests
    del rotated, keep
    weight = np.minimum(rng.geometric(0.5, size=len(who)), 5).astype(np.float64)
    return pd.DataFrame(
        {
            "member_id": _string_series(member_names, who),
            "interest": _string_series(_prefixed_names("topic:", n_interests, pad=False), topic),
            "weight": weight,
        }
    )


_SUFFIX = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}


def write_synthetic(
    out_dir: str | os.PathLike[str],
    n_members: int,
    *,
    seed: int = 0,
    fmt: Literal["csv.gz", "csv", "parquet"] = "csv.gz",
    **kwargs: Any,
) -> dict[str, Path]:
    """Generate the synthetic network and write it in the input layout.

    Parameters
    ----------
    out_dir : path
        Directory to write to (created if missing).
    n_members : int
        Number of members.
    seed : int
        Seed of the generator.
    fmt : {"csv.gz", "csv", "parquet"}
        File format; files are ``members``, ``interests`` and ``connections`` + the suffix.
    **kwargs
        Further keyword arguments of :func:`generate_tables`; an unknown name raises
        ``TypeError`` before anything is written.

    Returns
    -------
    dict of str to Path
        Table name → the file written. Each file is written atomically (temporary file in the
        same directory, then ``os.replace``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     paths = write_synthetic(out, 300, seed=2, fmt="csv")
    ...     sorted(p.name for p in paths.values())
    ['connections.csv', 'interests.csv', 'members.csv']
    """
    if fmt not in _SUFFIX:
        raise ValueError(f"fmt must be one of {sorted(_SUFFIX)}, got {fmt!r}")
    tables = generate_tables(n_members, seed=seed, **kwargs)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in ("members", "interests", "connections"):
        path = directory / f"{name}{_SUFFIX[fmt]}"
        write_frame(tables[name], path, fmt=fmt)
        logger.info("wrote %s (%d rows)", path, len(tables[name]))
        paths[name] = path
    return paths
