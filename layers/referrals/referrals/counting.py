"""How a referrer's count is spread over items so that one viral code cannot exceed an item's write ceiling.

A count starts on one item (shard 0). When a registration finds the count's item throttled, the referrer's
shard count doubles (up to MAX_SHARDS); each registration then adds 1 to one shard picked at random, inside
its own transaction, and a read sums the shards. The count stays exact: every increment rides in the
transaction that creates the friend's account, so it is applied once or not at all.
"""

from __future__ import annotations

import random

MAX_SHARDS = 64
# DynamoDB: an item takes at most 1,000 write units a second; a transactional write costs two.
ITEM_WRITES_PER_SECOND = 1000
ITEM_TRANSACTIONAL_WRITES_PER_SECOND = 500
# Eventually consistent reads of an item under 4 KB cost half a unit; a partition serves 3,000 units a second.
ITEM_READS_PER_SECOND = 6000


def pick_shard(shards: int, rng: random.Random | None = None) -> int:
    return (rng or random).randrange(max(1, shards))


def grown(shards: int) -> int:
    """The shard count after a throttled count write: doubled, within the cap."""
    return min(MAX_SHARDS, max(1, shards) * 2)


def shards_needed(signups_per_second: float) -> int:
    """The fewest shards (a power of two) that keep each below its transactional write ceiling."""
    shards = 1
    while signups_per_second / shards > ITEM_TRANSACTIONAL_WRITES_PER_SECOND and shards < MAX_SHARDS:
        shards *= 2
    return shards
