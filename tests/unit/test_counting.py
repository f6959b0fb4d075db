"""The shard policy for referral counts, and the viral-code simulation that holds items to their ceilings."""

from __future__ import annotations

import random

from bench import viral
from referrals import counting


def test_shards_double_up_to_the_cap():
    assert [counting.grown(s) for s in (0, 1, 2, 32, 64)] == [2, 2, 4, 64, 64]


def test_picked_shards_cover_the_range():
    rng = random.Random(1)
    assert {counting.pick_shard(8, rng) for _ in range(500)} == set(range(8))
    assert counting.pick_shard(1, rng) == 0


def test_shards_needed_keep_each_under_the_transactional_ceiling():
    assert counting.shards_needed(400) == 1
    assert counting.shards_needed(10_000) == 32
    assert 10_000 / counting.shards_needed(10_000) <= counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND


def test_viral_code_is_admitted_in_full_and_counted_exactly():
    ours = viral.simulate(sharded=True)
    naive = viral.simulate(sharded=False)
    assert ours["admitted_per_second"] == viral.OFFERED_PER_SECOND and ours["refused"] == 0
    assert ours["count_exact"]
    assert ours["hottest_item_writes_per_second"] <= counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND
    assert naive["admitted_per_second"] < viral.OFFERED_PER_SECOND / 10
