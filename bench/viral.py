"""One viral code: 10,000 sign-ups a second with one referral code, every item held to DynamoDB's ceilings.

A discrete simulation (1 ms steps) of the registration write pattern, using the production shard policy
(`referrals.counting`). Each registration is one transaction over four items: three new ones (account, code,
link) and one of the referrer's count shards. An item over its ceiling in the last second throttles the
whole transaction (nothing applied), which is retried with jittered backoff as `storage._transact` does; a
throttled count write makes the registration re-read the code item and double the shard count (one
conditional transaction on the code item and the referrer's account item, both held to the ceilings too).
The code item is read through a short per-environment cache, so its reads stay under the read ceiling too.

Baseline, in the same run: the same load with one count item and no cache (the naive design).
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from referrals import counting

OFFERED_PER_SECOND = 10_000
SECONDS = 10
ATTEMPTS = 6  # as storage._TRANSACTION_ATTEMPTS
ENVIRONMENTS = 300  # warm Lambda environments serving the load (10,000/s x ~30 ms)
CODE_CACHE_MS = 5_000


@dataclass
class Item:
    writes: deque[int] = field(default_factory=deque)
    reads: deque[int] = field(default_factory=deque)
    total_writes: int = 0
    peak_writes: int = 0

    def _load(self, window: deque[int], now: int) -> int:
        while window and window[0] <= now - 1000:
            window.popleft()
        return len(window)

    def can_write(self, now: int) -> bool:
        return self._load(self.writes, now) < counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND

    def write(self, now: int) -> None:
        self.writes.append(now)
        self.total_writes += 1
        self.peak_writes = max(self.peak_writes, len(self.writes))

    def read(self, now: int) -> bool:
        if self._load(self.reads, now) >= counting.ITEM_READS_PER_SECOND:
            return False
        self.reads.append(now)
        return True


def simulate(sharded: bool, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    code, referrer = Item(), Item()
    shards: dict[int, Item] = defaultdict(Item)
    counts: dict[int, int] = defaultdict(int)
    shard_count = 1
    cache: dict[int, tuple[int, int]] = {}  # environment -> (read at, shard count seen)
    admitted = refused = 0
    queue: list[tuple[int, int, int]] = []  # (time ms, attempt, sequence)
    sequence = 0
    for ms in range(SECONDS * 1000):
        for _ in range(OFFERED_PER_SECOND // 1000):
            heapq.heappush(queue, (ms, 0, sequence))
            sequence += 1
    while queue:
        now, attempt, seq = heapq.heappop(queue)
        environment = seq % ENVIRONMENTS
        cached = cache.get(environment)
        if sharded and cached and now - cached[0] < CODE_CACHE_MS:
            seen = cached[1]
        else:
            if not code.read(now):  # the code's read throttled: retried like any throttle
                retry(queue, rng, now, attempt, seq)
                refused += attempt + 1 >= ATTEMPTS
                continue
            seen = shard_count
            cache[environment] = (now, seen)
        shard = counting.pick_shard(seen, rng) if sharded else 0
        if shards[shard].can_write(now):
            shards[shard].write(now)
            counts[shard] += 1
            admitted += 1
            continue
        if sharded:
            cache.pop(environment, None)  # re-read the code item on the retry
            target = counting.grown(seen)
            if seen == shard_count and target > shard_count and code.can_write(now) and referrer.can_write(now):
                code.write(now)
                referrer.write(now)
                shard_count = target
        if attempt + 1 < ATTEMPTS:
            retry(queue, rng, now, attempt, seq)
        else:
            refused += 1
    hottest = max([code.peak_writes, referrer.peak_writes, *(s.peak_writes for s in shards.values())])
    return {
        "admitted_per_second": admitted / SECONDS,
        "refused": refused,
        "count_exact": sum(counts.values()) == admitted,
        "hottest_item_writes_per_second": hottest,
        "shards": shard_count,
    }


def retry(queue: list[tuple[int, int, int]], rng: random.Random, now: int, attempt: int, seq: int) -> None:
    if attempt + 1 < ATTEMPTS:
        heapq.heappush(queue, (now + 1 + int(rng.uniform(0, 10 * 2**attempt)), attempt + 1, seq))


def run() -> list[dict[str, Any]]:
    naive = simulate(sharded=False)
    ours = simulate(sharded=True)
    return [
        {
            "figure": f"viral code: sign-ups admitted/s of {OFFERED_PER_SECOND:,} offered",
            "unit": "/s",
            "value": ours["admitted_per_second"],
            "baseline": naive["admitted_per_second"],
            "baseline_name": "one count item, no cache",
            "ratio": round(ours["admitted_per_second"] / naive["admitted_per_second"], 1),
            "shards": ours["shards"],
            "refused": ours["refused"],
            "baseline_refused": naive["refused"],
        },
        {
            "figure": "viral code: count exact (sum of shards = accounts)",
            "unit": "",
            "value": ours["count_exact"],
            "baseline": naive["count_exact"],
            "baseline_name": "one count item",
            "ratio": 1.0,
        },
        {
            "figure": "viral code: hottest item writes/s",
            "unit": "/s",
            "value": ours["hottest_item_writes_per_second"],
            "baseline": counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND,
            "baseline_name": "transactional ceiling",
            "ratio": round(ours["hottest_item_writes_per_second"] / counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND, 2),
        },
    ]
