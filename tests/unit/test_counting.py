"""The shard policy for referral counts (the viral-code simulation: tests/unit/test_viral_model.py)."""

from __future__ import annotations

import random

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
