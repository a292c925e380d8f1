"""Feedback-loop simulation: determinism for a seed, known values, and the tracked job."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys._simulation import (
    AcceptanceBehaviour,
    modularity,
    network_outcomes,
    simulate_feedback_loop,
)


@pytest.fixture(scope="module")
def tiny():
    from recsys import synthetic_network

    return synthetic_network(300, seed=4)


def interest_policy(network, round_index):
    """A cheap deterministic policy: the members sharing the most interests, not yet connected."""
    X = sp.csr_matrix(network.member_interests > 0, dtype=np.float64)
    overlap = (X @ X.T).toarray()
    np.fill_diagonal(overlap, -1)
    overlap[network.adjacency.toarray() > 0] = -1

    def rank(rows, k):
        scores = overlap[rows]
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int32)
        top = np.take_along_axis(scores, ids, axis=1)
        return np.where(top >= 0, ids, -1), top.astype(np.float32)

    return rank


def test_same_seed_same_history(tiny):
    kwargs = dict(rounds=3, k=5, members_per_round=120, random_state=5)
    a = simulate_feedback_loop(tiny, interest_policy, **kwargs)
    b = simulate_feedback_loop(tiny, interest_policy, **kwargs)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.groups, b.groups)
    np.testing.assert_array_equal(a.network.connections, b.network.connections)
    other = simulate_feedback_loop(tiny, interest_policy, **{**kwargs, "random_state": 6})
    assert not np.array_equal(other.network.connections, a.network.connections)


def test_rounds_only_add_connections(tiny):
    result = simulate_feedback_loop(
        tiny, interest_policy, rounds=2, k=5, members_per_round=100, random_state=1
    )
    h = result.history
    assert h["round"].tolist() == [0, 1, 2]
    assert (h.loc[1:, "members_ranked"] == 100).all() and (
        h.loc[1:, "introductions_shown"] <= 500
    ).all()
    added = len(result.network.connections) - len(tiny.connections)
    assert added == h["accepted"].sum() > 0
    assert np.all(np.diff(h["mean_degree"]) >= 0)
    old = {tuple(e) for e in tiny.connections.tolist()}
    assert old <= {tuple(e) for e in result.network.connections.tolist()}


def test_behaviour_probability_orders():
    from recsys import synthetic_network

    net = synthetic_network(200, seed=0)
    b = AcceptanceBehaviour()
    u = np.zeros(4, dtype=np.int64)
    v = np.array([1, 1, 2, 3])
    p = b.probability(net, u, v, np.array([0, 9, 0, 0]))
    assert np.all((p >= 0) & (p <= 1))
    assert p[1] < p[0]  # lower in the slate: seen less often
    flat = AcceptanceBehaviour(position_bias=False).probability(
        net, u[:2], v[:2], np.array([0, 9])
    )
    assert flat[0] == flat[1]
    # strangers with nothing in common: sigmoid(intercept)
    empty = type(net)(
        member_ids=np.array(["a", "b"], dtype=object),
        adjacency=sp.csr_matrix((2, 2), dtype=np.float32),
        member_interests=sp.csr_matrix((2, 1), dtype=np.float32),
        interest_names=np.array(["x"], dtype=object),
        attributes=pd.DataFrame(index=range(2)),
        sensitive=pd.DataFrame(index=range(2)),
        connections=np.empty((0, 2), np.int32),
    )
    q = AcceptanceBehaviour(position_bias=False).probability(
        empty, np.array([0]), np.array([1]), np.array([0])
    )
    assert q[0] == pytest.approx(1 / (1 + np.exp(3.0)))


def test_modularity_known_values():
    two = sp.csr_matrix(([1.0] * 4, ([0, 1, 2, 3], [1, 0, 3, 2])), shape=(4, 4))
    assert modularity(two, np.array([0, 0, 1, 1])) == pytest.approx(0.5)
    assert modularity(two, np.array([0, 0, 0, 0])) == pytest.approx(0.0)
    assert modularity(sp.csr_matrix((3, 3)), np.array([0, 1, 2])) == 0.0
    import igraph as ig

    rng = np.random.default_rng(0)
    a = sp.triu(sp.random(60, 60, density=0.1, random_state=1), k=1)
    a = ((a + a.T) > 0).astype(np.float64).tocsr()
    labels = rng.integers(0, 4, 60)
    upper = sp.triu(a, k=1).tocoo()
    graph = ig.Graph(n=60, edges=np.column_stack([upper.row, upper.col]).tolist())
    assert modularity(a, labels) == pytest.approx(graph.modularity(labels.tolist()))


def test_small_groups_get_no_degree_figures(tiny):
    communities = np.zeros(tiny.n_members, dtype=int)
    metrics, groups = network_outcomes(tiny, initial_communities=communities, min_group_size=10**6)
    assert not any(k.startswith("degree_gap/") or k.startswith("degree_ratio/") for k in metrics)
    assert (
        groups["suppressed"].all()
        and groups["mean_degree"].isna().all()
        and groups["members"].isna().all()
    )
    metrics, _ = network_outcomes(tiny, initial_communities=communities, min_group_size=5)
    assert metrics["degree_gap/gender"] >= 0 and 0 < metrics["degree_ratio/gender"] <= 1
    assert metrics["bridge_share"] == 0.0


def test_simulate_command_tracks_both_policies(tmp_path, tmp_path_factory, capsys):
    from cli import main

    # shared with the other issue-5 tests
    uri = f"sqlite:///{tmp_path_factory.getbasetemp()}/issue5-mlflow.db"
    code = main(
        [
            "simulate",
            "--rounds",
            "2",
            "--output",
            str(tmp_path / "sim"),
            "--set",
            "synthetic.members=300",
            "--set",
            "candidates.als.iterations=2",
            "--set",
            "candidates.pool_size=40",
            "--set",
            "simulation.members_per_round=150",
            "--set",
            f"mlflow.tracking_uri={uri}",
        ]
    )
    assert code == 0
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("plusone-simulation").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {
        r.data.tags["policy"]: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"unconstrained", "rerank"}
    steps = [
        m.step for m in client.get_metric_history(children["rerank"].info.run_id, "degree_gini")
    ]
    assert steps == [0, 1, 2]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "simulation.png",
        "simulation_history.csv",
    }
    history = pd.read_csv(tmp_path / "sim" / "simulation_history.csv")
    assert set(history["policy"]) == {"unconstrained", "rerank"} and history["round"].max() == 2
    # both policies start from the same network
    first = history[history["round"] == 0].drop(columns="policy")
    assert first.iloc[0].equals(first.iloc[1])
