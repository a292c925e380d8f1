"""Recipient capacity while serving: the decaying inbound counter, members at capacity left out
of the next slates, counts carried to a new version, and the least-exposed last places."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest

import recsys
from serving import Recommender
from serving._capacity import DecayingInboundCounter, InboundLimit


def test_inbound_counter_counts_each_showing_and_halves_every_half_life():
    counter = DecayingInboundCounter(np.array([2, 2, 5]), half_life=10.0)
    counter.record(np.array([0, 0, 1]), now=100.0)  # member 0 shown twice, member 1 once
    assert counter.over(np.array([0, 1, 2]), now=100.0).tolist() == [True, False, False]
    assert counter.over_all(100.0).tolist() == [True, False, False]
    # one half-life later member 0's count is 1: below capacity again
    assert counter.over_all(110.0).tolist() == [False, False, False]
    counter.record(np.array([1]), now=110.0)  # 0.5 decayed + 1
    np.testing.assert_allclose(counter.counts[:2], [2.0, 1.5])
    assert counter.over(np.array([1]), now=110.0)[0]  # one more showing would take 1.5 above 2
    assert not counter.over(np.array([1]), now=120.0)[0]  # 0.75: room for one


def _appearances(rec: Recommender, members: list[str], k: int) -> pd.Series:
    shown = [i.member_id for m in members for i in rec.rank(m, k=k).introductions]
    return pd.Series(shown, dtype=object).value_counts()


def test_serving_holds_recipient_capacity_with_a_decaying_counter(
    capacity_one, reference, capacity_of
):
    members = [str(m) for m in reference.network_.member_ids[:200]]
    free = _appearances(
        Recommender.load(capacity_one, cache_size=0, capacity_half_life=None), members, k=5
    )
    assert (
        free.to_numpy() > capacity_of(capacity_one, free)
    ).sum() > 10  # without the counter many are over
    rec = Recommender.load(capacity_one, cache_size=0)
    held = _appearances(rec, members, k=5)
    cap = capacity_of(capacity_one, held)
    assert (
        held.to_numpy() <= cap
    ).all()  # one fresh slate each, a mentor's `capacity` column where given
    assert rec.status()["inbound"]["members_at_capacity"] == (held.to_numpy() == cap).sum() > 100
    # a cached slate shown again is not counted again
    cached = Recommender.load(capacity_one)
    first = cached.rank(members[0], k=5)
    assert cached.rank(members[0], k=5) == first and cached.status()["inbound"][
        "members_at_capacity"
    ] == len(first.introductions)


def test_a_new_version_inherits_live_counts_but_not_the_old_table(capacity_one):
    model = recsys.load_model(capacity_one)
    old, new = InboundLimit(model, 86_400.0), InboundLimit(model, 86_400.0)
    now = time.time()
    old.record(np.array([1, 2, 2]), now)  # shown live
    old.record(np.array([3, 4]), now, planned=True)  # in the old version's table
    assert old.unavailable(now)[[1, 2, 3, 4, 5]].tolist() == [True, True, True, True, False]
    new.carry_over(old)
    assert new.unavailable(now)[[1, 2, 3, 4, 5]].tolist() == [True, True, False, False, False]
    assert new.planned.sum() == 0 and new.stats()["members_at_capacity"] == 2


@pytest.mark.parametrize("where", ["in-process", "child process"])
def test_warmed_slates_fill_their_last_places_from_the_carried_counts(
    four_floor_places, tmp_path, where, member
):
    live = tmp_path / "served"
    shutil.copytree(four_floor_places, live)
    rec = Recommender.load(
        live, warm_on_reload=5, warm_subprocess_min=1 if where == "child process" else 10_000
    )
    reference = recsys.load_model(four_floor_places)
    who = member(reference, 7)
    first = [
        i.member_id for i in rec.rank(who, k=10).introductions
    ]  # its members are shown once each
    (live / "manifest.json").write_text(
        (live / "manifest.json").read_text() + " "
    )  # same model, a new version
    assert (
        rec.reload().swapped and rec.status()["cache"]["size"] == 1
    )  # the slate was warmed, not ranked on request
    _, exposure = rec._current().inbound.state(time.time())
    row = reference.network_.rows_of([who])
    want, _ = reference.rank(row, k=10, exposure=exposure)
    got = [i.member_id for i in rec.rank(who, k=10).introductions]
    assert got == [str(reference.network_.member_ids[o]) for o in want[0] if o >= 0]
    assert (
        got[:8] == first[:8] and got[8:] != first[8:]
    )  # the last places went to members not shown yet
