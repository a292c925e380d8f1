"""The community ensemble and co-membership: properties, known answers, and the partitions a
model never saw."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys import (
    ENSEMBLE,
    co_membership,
    community_ensemble,
    detect_communities,
    evaluation_partitions,
)


def _graph(edges, n):
    e = np.array(edges)
    rows, cols = np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def _two_cliques(size=6):
    """Two cliques of ``size`` joined by one edge (size - 1, size)."""
    edges = [(i, j) for i in range(size) for j in range(i + 1, size)]
    edges += [(size + i, size + j) for i in range(size) for j in range(i + 1, size)]
    return _graph(edges + [(size - 1, size)], 2 * size)


def test_two_cliques_joined_by_one_edge():
    labels = community_ensemble(_two_cliques())
    assert labels.shape == (12, len(ENSEMBLE))
    # inside a clique every partition agrees; across the joining edge none does
    np.testing.assert_array_equal(co_membership(labels, [0, 6, 5], [4, 11, 6]), [1.0, 1.0, 0.0])
    # the first partition is the model's own
    np.testing.assert_array_equal(labels[:, 0], detect_communities(_two_cliques()))


@st.composite
def random_graphs(draw):
    n = draw(st.integers(4, 30))
    edges = draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=80)
    )
    edges = [(a, b) for a, b in edges if a != b] or [(0, 1)]
    adjacency = _graph(edges, n)
    adjacency.data[:] = 1.0
    return adjacency


@settings(max_examples=40, deadline=None)
@given(random_graphs(), st.integers(0, 3))
def test_co_membership_properties(adjacency, seed):
    n = adjacency.shape[0]
    labels = community_ensemble(adjacency, random_state=seed)
    u, v = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    co = co_membership(labels, u.ravel(), v.ravel()).reshape(n, n)
    assert ((co >= 0) & (co <= 1)).all()
    np.testing.assert_array_equal(co, co.T)  # symmetric
    assert (np.diag(co) == 1).all()
    # deterministic for a seed
    np.testing.assert_array_equal(labels, community_ensemble(adjacency, random_state=seed))


def test_evaluation_partitions_are_not_the_models():
    adjacency = _two_cliques(8)
    unseen = evaluation_partitions(adjacency, random_state=0)
    assert len(unseen) >= 5 and all(len(labels) == 16 for labels in unseen.values())
    # seeds far from any model's (whose run from random_state + its offsets)
    assert all("s10" in name or name == "louvain" for name in unseen)
