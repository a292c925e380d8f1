"""The relevance–equality frontier (recsys._frontier): a mix of slates trading relevance for
Gini, and exposure-priced rounds."""

import numpy as np

from recsys import _frontier as frontier
from recsys.metrics import exposure_counts, gini


def _problem(n=200, n_rows=150, width=40, k=5):
    rng = np.random.default_rng(1)
    popularity = rng.pareto(1.2, n) + 0.05
    ids = np.stack(
        [
            rng.choice(n, width, replace=False, p=popularity / popularity.sum())
            for _ in range(n_rows)
        ]
    ).astype(np.int32)
    ids[:, -3:] = -1
    p = np.where(ids >= 0, rng.random(ids.shape) * np.log1p(popularity[np.maximum(ids, 0)]), 0.0)
    hits = ((ids >= 0) & (rng.random(ids.shape) < p / p.max())).astype(float)
    kw = dict(
        ids=ids,
        valid=ids >= 0,
        hits=hits,
        n_relevant=np.maximum(hits.sum(axis=1), 1),
        n_members=n,
        k=k,
    )
    return p, kw


def test_without_a_price_the_mix_is_the_top_k():
    p, kw = _problem()
    recall, g = frontier.frontier_point(p, lam=0.0, iterations=5, **kw)
    top = frontier.top_mask(kw["valid"], p, kw["k"])
    assert np.isclose(recall, np.mean((top * kw["hits"]).sum(axis=1) / kw["n_relevant"]))
    slates = np.where(top > 0, kw["ids"], -1)
    assert np.isclose(g, gini(exposure_counts(slates, n_members=kw["n_members"])))


def test_a_higher_price_on_exposure_lowers_gini_and_the_bisection_meets_the_bound():
    p, kw = _problem()
    points = [
        frontier.frontier_point(p, lam=lam, iterations=40, **kw) for lam in (0.0, 0.3, 1.0, 3.0)
    ]
    ginis = [g for _, g in points]
    assert all(a > b for a, b in zip(ginis, ginis[1:]))
    cap = 0.8 * ginis[0]
    recall, g, lam = frontier.frontier_at(p, cap, 0.1, 6, iterations=40, **kw)
    assert g <= cap and lam > 0 and 0 < recall


def _priced_reference(prefs, scores, capacity, k, inside, max_inside, lam):
    """Exposure-priced rounds, plainly: the price read off a sort of everyone's exposure."""
    n = len(capacity)
    exposure = np.zeros(n, dtype=np.int64)
    out = np.full((len(prefs), k), -1)
    n_inside = np.zeros(len(prefs), dtype=np.int64)
    for t in range(k):
        for r in range(len(prefs)):
            best, best_value = -1, -np.inf
            for j, c in enumerate(prefs[r]):
                if c < 0:
                    break
                if (
                    c in out[r]
                    or exposure[c] >= capacity[c]
                    or (inside[r, j] and n_inside[r] >= max_inside[r])
                ):
                    continue
                price = (
                    2.0 * (exposure < exposure[c]).sum() + (exposure == exposure[c]).sum() - n
                ) / n
                if scores[r, j] - lam * price > best_value:
                    best, best_value = j, scores[r, j] - lam * price
            if best >= 0:
                out[r, t] = prefs[r, best]
                exposure[prefs[r, best]] += 1
                n_inside[r] += inside[r, best]
    return out


def test_priced_rounds_equal_the_plain_version_and_hold_capacity_and_quota():
    rng = np.random.default_rng(4)
    n, n_rows, width, k = 30, 40, 12, 4
    prefs = np.stack([rng.permutation(n)[:width] for _ in range(n_rows)]).astype(np.int32)
    prefs[:, -2:] = -1
    scores = np.where(prefs >= 0, np.sort(rng.random((n_rows, width)))[:, ::-1], -np.inf)
    capacity = rng.integers(1, 8, n)
    inside, max_inside = rng.random(prefs.shape) < 0.4, rng.integers(0, 3, n_rows)
    for lam in (0.0, 0.2, 1.0):
        got = frontier.priced_slates(prefs, scores, capacity, k, inside, max_inside, lam)
        np.testing.assert_array_equal(
            got, _priced_reference(prefs, scores, capacity, k, inside, max_inside, lam)
        )
        assert (np.bincount(got[got >= 0], minlength=n) <= capacity).all()
    plain = frontier.priced_slates(
        prefs, scores, np.full(n, 10**6), k, np.zeros(prefs.shape, bool), np.full(n_rows, k), 0.0
    )
    np.testing.assert_array_equal(plain, prefs[:, :k])  # no price, no limits: each list's first k
