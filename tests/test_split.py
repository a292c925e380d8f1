import numpy as np
import pytest

from recsys import holdout_split


def _pair_keys(edges, n):
    edges = np.sort(np.asarray(edges, dtype=np.int64), axis=1)
    return set((edges[:, 0] * n + edges[:, 1]).tolist())


def test_split_partitions_connections_without_leakage(small_network):
    train, heldout = holdout_split(small_network, fraction=0.2, seed=5)
    n = small_network.n_members
    all_keys = _pair_keys(small_network.connections, n)
    train_keys = _pair_keys(train.connections, n)
    held_keys = _pair_keys(heldout, n)
    assert not train_keys & held_keys
    assert train_keys | held_keys == all_keys
    # the training adjacency holds no held-out pair
    adj = train.adjacency
    assert np.asarray(adj[heldout[:, 0], heldout[:, 1]]).ravel().sum() == 0
    assert abs(len(heldout) - 0.2 * len(small_network.connections)) <= 0.02 * len(
        small_network.connections
    )


def test_split_keeps_every_member_connected(small_network):
    train, _ = holdout_split(small_network, fraction=0.3, seed=1)
    had = small_network.degrees > 0
    assert (train.degrees[had] > 0).all()


def test_split_is_seeded(small_network):
    _, a = holdout_split(small_network, fraction=0.1, seed=7)
    _, b = holdout_split(small_network, fraction=0.1, seed=7)
    _, c = holdout_split(small_network, fraction=0.1, seed=8)
    assert np.array_equal(a, b)
    if small_network.connection_times is None:
        assert not np.array_equal(a, c)


def test_time_based_split_holds_out_the_newest(small_network):
    assert small_network.connection_times is not None
    train, heldout = holdout_split(small_network, fraction=0.1, seed=0)
    n = small_network.n_members
    times = dict(
        zip(
            (
                small_network.connections[:, 0].astype(np.int64) * n
                + small_network.connections[:, 1]
            ).tolist(),
            small_network.connection_times,
        )
    )
    held_t = np.array([times[k] for k in sorted(_pair_keys(heldout, n))])
    # held-out connections are (almost all) newer than the median training connection; a few old
    # ones may be swapped in where a member would have been left without training connections
    assert np.mean(held_t > np.median(train.connection_times)) > 0.95


def test_zero_fraction_holds_out_nothing(small_network):
    train, heldout = holdout_split(small_network, fraction=0.0)
    assert train is small_network and heldout.shape == (0, 2)


def test_bad_fraction_is_an_error(small_network):
    with pytest.raises(ValueError, match="fraction"):
        holdout_split(small_network, fraction=1.0)
