"""Reasons and the one line people read (recsys._explain)."""

import doctest

import numpy as np

import recsys
from recsys import _explain, summarize_reasons


def test_doctests():
    result = doctest.testmod(_explain, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_summary_reads_as_one_line():
    assert (
        summarize_reasons({"n_shared_interests": 3, "n_mutual_contacts": 2})
        == "3 shared interests, 2 mutual contacts could introduce you"
    )
    assert (
        summarize_reasons(
            {"n_shared_interests": 1, "n_mutual_contacts": 1, "bridges_communities": True}
        )
        == "1 shared interest, 1 mutual contact could introduce you, from another community"
    )
    assert summarize_reasons({"n_shared_interests": 0, "n_mutual_contacts": 0}) == (
        "new to your network"
    )


def test_broker_reasons_read_in_the_same_style():
    line = summarize_reasons(
        {
            "n_shared_interests": 2,
            "n_other_mutual_contacts": 3,
            "bridges_communities": False,
            "small_networks": [{"member_id": "b", "n_connections": 1}],
        }
    )
    assert line == "2 shared interests, 3 other mutual contacts, b has 1 connection"


def test_explain_names_the_rarest_interests_and_best_connected_contacts():
    net = recsys.synthetic_network(300, seed=0)
    model = recsys.IntroductionRecommender(pool_size=30, als_iterations=2).fit(net)
    ids, _ = model.rank([0], k=10)
    others = ids[0][ids[0] >= 0]
    reasons = model.explain(0, others)
    assert len(reasons) == len(others)
    adjacency, interests = net.adjacency, net.member_interests
    for other, r in zip(others, reasons):
        mutual = np.intersect1d(adjacency[0].indices, adjacency[other].indices)
        shared = np.intersect1d(interests[0].indices, interests[other].indices)
        assert r["n_mutual_contacts"] == len(mutual) and r["n_shared_interests"] == len(shared)
        named = net.rows_of(r["mutual_contacts"])
        degrees = np.diff(adjacency.indptr)
        # the named contacts are the best connected of the mutual ones
        assert set(named) <= set(mutual)
        if len(mutual) > len(named):
            assert degrees[named].min() >= np.sort(degrees[mutual])[::-1][len(named) - 1]
        assert r["summary"] == summarize_reasons(r)
        assert r["bridges_communities"] == bool(model.communities_[0] != model.communities_[other])
