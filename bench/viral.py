"""One viral code: 10,000 sign-ups a second with one referral code, every partition held to DynamoDB's ceilings,
the indexes' partitions included.

A discrete simulation (1 ms steps) of what one sign-up with a code writes (`storage.create_account`'s transaction,
then the outbox delete after `outbox.publish`), item by item and index by index:

| written | table, partition key | indexes it lands in | shared by one code's sign-ups? |
| --- | --- | --- | --- |
| the friend's account (put) | Customers, the friend's id | none | no |
| the friend's new code (put) | Codes, the new code | none | no |
| the referral (put) | Referrals, `REFEREE#<friend>` | `ByReferrerShard` (`referrerShard`), `Due` (`dueShard`) | both |
| the `ReferralRegistered` outbox record (put) | Referrals, `REFEREE#<friend>` | `Due` (`dueShard`) | `Due` |
| a count shard (+1) | ReferralCounts, `storage.shard_key` (+ `shard`) | none | one of the referrer's shards |
| the velocity counter (+1) | Invites, `VELOCITY#<code>#<window>#<source>` | none (`ByInviter` is sparse) | per source |
| after publishing: the outbox record (delete) | Referrals, `REFEREE#<friend>` | `Due` (the entry goes) | `Due` |

Ceilings (docs/performance.md, "One viral code", lists the sources): a partition takes at most 1,000 write units a
second; a write costs one unit per KB of the item (rounded up), two inside a transaction; an index write costs one
unit per KB of the projected entry; a throttled index throttles the base-table write, so the whole transaction is
refused (nothing applied) and retried with jittered backoff as `storage.client._transact` does. When an attempt finds
its count item throttled, the registration doubles the shard count before its next attempt
(`storage.accounts._grow_on_contention`: the code read again, then one conditional transaction on the code item and
the referrer's account) and the next attempt picks a shard of the new count (the layer picks one other than the
contended shard; the model picks among all of them). The code item is read through a short per-environment cache.

What is held to which ceiling:
- Items written by one sign-up only (the friend's account, code, referral and outbox record in the base tables;
  the velocity counter, one per source) are listed and sized but never shared, so they are not tracked.
- A set of items updated again and again (the count shards, the code item, the referrer's account): each item to
  1,000 units a second. Adaptive capacity isolates frequently written items on partitions of their own; that is
  the most it can do for them, and it is not instant. Until 3935f5e the count shards shared one partition key
  value (`referrerId`; `Design.count_items_isolated=False` holds them to one partition, as before any isolation);
  the layer now gives each shard a partition key value of its own (`storage.shard_key`).
- An index's stream of new entries under one partition key value (`ByReferrer` until 3935f5e: the referrer;
  `ByReferrerShard`: the referrer's count shard; `Due`: a shard number): one partition's 1,000 units a second,
  whatever the table's size. Every entry is new and its sort key (`createdAt`, `dueAt`) only grows, so no split
  of that key's range moves the writes off one partition.

Item and index-entry sizes are computed from the attributes the layer writes (`item_sizes`), with the layer's own
models. Designs (`Design`): the naive baseline, the layer before (4 `Due` shards, the count grown only after a
registration succeeded), the layer at 3935f5e (64 `Due` shards, the count grown at its first throttle, `ByReferrer`
on `referrerId`), and the layer today (also `ByReferrerShard` keyed on `<referrerId>#<count shard>`, and a
partition key per count shard), with variants that take one change away. `python -m bench.viral` prints them side
by side.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from referrals import counting

OFFERED_PER_SECOND = 10_000
SECONDS = 10
ATTEMPTS = 6  # as storage.client._TRANSACTION_ATTEMPTS
ENVIRONMENTS = 300  # warm Lambda environments serving the load (10,000/s x ~30 ms)
CODE_CACHE_MS = 5_000  # as storage.CODE_CACHE_SECONDS
PUBLISH_MS = 30  # PutEvents between the transaction and the outbox delete
DELETE_ATTEMPTS = 4  # pynamodb's batch_write: the request and max_retry_attempts (3) resends of what is unprocessed
PARTITION_WRITE_UNITS = 1000
ITEM_READS_PER_SECOND = counting.ITEM_READS_PER_SECOND
WRITE_UNIT_BYTES = 1024
TRANSACTIONAL = 2  # write units per KB of an item written inside TransactWriteItems
ID_LENGTH = 36  # a Cognito `sub` (a UUID)


@dataclass(frozen=True)
class Design:
    """A data model and its write path, as far as the simulation can tell them apart."""

    name: str
    count_shards: bool = True  # spread the count over shards that double under contention (referrals.counting)
    code_cache: bool = True  # registrations read the code through a per-environment cache
    indexes: bool = True  # hold the index partitions to their ceilings (False: base-table items only)
    referrer_index_sharded: bool = False  # ByReferrer keyed on `<referrerId>#<count shard>`, not `referrerId`
    due_shards: int = 4  # storage.DUE_SHARDS before it was 64 (TODAY sets 64)
    # Index write units per KB of an entry written by a transaction: 1 (the index is updated after the transaction
    # commits, a standard write) or 2 (as if charged like the transaction's own writes: the cautious reading).
    transactional_index_units: int = 1
    # What a registration does when its count item throttles: False, as the layer did before (retry the same
    # shard; double the shard count only once the registration has succeeded); True, as the layer does today:
    # double the shard count at once, forget the cached code and retry with a shard picked from the new count.
    grow_on_throttle: bool = False
    # Each count shard on a partition of its own. Today the shards share one partition key value (`referrerId`,
    # the shard is the sort key): True means adaptive capacity has isolated them (granted at once, the most it
    # can do), False that it has not yet, so all of them share one partition. The designed key puts each shard
    # under a partition key value of its own (`<referrerId>#<shard>`), so True needs no isolation.
    count_items_isolated: bool = True


NAIVE = Design("naive: one count item, no code cache", count_shards=False, code_cache=False)
BASE_ITEMS_ONLY = Design(
    "the previous model: base-table items only, retries re-pick a shard", indexes=False, grow_on_throttle=True
)
# The layer before 64 due shards and growth at the first throttle (docs/performance.md, "One viral code").
BEFORE = Design("the layer before 2026-11-28: ByReferrer on referrerId, 4 due shards, grown after success")
# The layer with 64 due shards and growth at the first throttle, before ByReferrerShard and a key per count shard.
PREVIOUS = Design(
    "the layer at 3935f5e: ByReferrer on referrerId, 64 due shards, count grown on its first throttle",
    due_shards=64,
    grow_on_throttle=True,
)
PREVIOUS_UNISOLATED = replace(
    PREVIOUS, name="the layer at 3935f5e, count shards not yet isolated", count_items_isolated=False
)
DUE_ONLY = Design("only more due shards (64)", due_shards=64)
REFERRER_ONLY = Design("only ByReferrer sharded by count shard", referrer_index_sharded=True)
# The layer as it is: ByReferrerShard (`<referrerId>#<count shard>`), 64 due shards, each count shard under a
# partition key of its own (storage.shard_key), the count grown on its first throttle.
TODAY = Design(
    "the layer today: ByReferrerShard, 64 due shards, a key per count shard, count grown on its first throttle",
    referrer_index_sharded=True,
    due_shards=64,
    grow_on_throttle=True,
)
TODAY_CAUTIOUS = replace(
    TODAY, name="the layer today, index writes charged as transactional", transactional_index_units=2
)
GROWN_AFTER_SUCCESS = replace(
    TODAY, name="today's data model, the count grown only after a success (as before)", grow_on_throttle=False
)
SHARED_COUNT_KEY = replace(
    TODAY, name="today, but the count shards left under one key (not isolated)", count_items_isolated=False
)
DESIGNS = (
    NAIVE,
    BASE_ITEMS_ONLY,
    BEFORE,
    PREVIOUS,
    PREVIOUS_UNISOLATED,
    DUE_ONLY,
    REFERRER_ONLY,
    GROWN_AFTER_SUCCESS,
    TODAY,
    TODAY_CAUTIOUS,
    SHARED_COUNT_KEY,
)


def attribute_size(name: str, value: dict[str, Any]) -> int:
    """Bytes of one attribute as DynamoDB counts them (name plus value; numbers about 1 byte per 2 digits + 1)."""
    ((kind, raw),) = value.items()
    size = len(name.encode())
    if kind == "S":
        return size + len(raw.encode())
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return size + math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return size + 1
    raise ValueError(f"unsized attribute type {kind}")


def item_size(serialised: dict[str, dict[str, Any]]) -> int:
    return sum(attribute_size(name, value) for name, value in serialised.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def item_sizes() -> dict[str, int]:
    """Bytes of each item one sign-up with a code writes, built as `customers.register` builds them."""
    from referrals import config, rewards, storage

    site = config.parse_settings(None).site(None)
    assert site is not None
    friend, referrer, created = "f" * ID_LENGTH, "r" * ID_LENGTH, "2026-11-25T10:00:00.000+00:00"
    new_code, code = "N" * 8, "C" * 8
    customer = storage.CustomerItem(
        friend,
        site=site.key,
        code=new_code,
        email_hash="h" * 64,
        first_name="Alexandra",
        referred_by=referrer,
        created_at=created,
    )
    code_item = storage.CodeItem(
        new_code,
        customer_id=friend,
        site=site.key,
        status="ACTIVE",
        owner_email_hash="h" * 64,
        owner_first_name="Alexandra",
        created_at=created,
    )
    pk, sk = storage.ReferralItem.key_for(friend)
    referral = storage.ReferralItem(
        pk,
        sk,
        referee_id=friend,
        referrer_id=referrer,
        site=site.key,
        code=code,
        status="REGISTERED",
        eligible=True,
        friend_name="Alexandra J.",
        created_at=created,
    )
    events = rewards.prepare_registration(site, referral)
    referral.referrer_shard = storage.shard_key(referrer, 63)  # as create_account sets it, the longest form
    velocity = storage.VelocityItem(f"VELOCITY#{code}#493817#{'d' * 32}", n=6, expires_at=1_778_000_000)
    return {
        "customer": item_size(customer.serialize()),
        "code": item_size(code_item.serialize()),
        "referral": item_size(referral.serialize()),
        "outbox": item_size(events[0].serialize()),
        "count": item_size(storage.CountItem.of(referrer, 63, count=1_000_000).serialize()),
        "velocity": item_size(velocity.serialize()),
    }


def signup_units(sizes: dict[str, int], design: Design) -> dict[str, int]:
    """Write units one sign-up costs, per table and index (the base table's at the transactional rate)."""
    base = {name: TRANSACTIONAL * write_units(size) for name, size in sizes.items()}
    per_index = design.transactional_index_units
    return {
        "base-table items (transaction)": sum(base.values()),
        "outbox delete (base table)": write_units(sizes["outbox"]),
        "ByReferrer": per_index * write_units(sizes["referral"]),
        "Due (transaction)": per_index * (write_units(sizes["referral"]) + write_units(sizes["outbox"])),
        "Due (outbox delete)": write_units(sizes["outbox"]),
    }


# DynamoDB's default quota for an on-demand table (and each of its indexes): 40,000 write request units a second,
# adjustable; a new on-demand table starts able to take about 4,000 writes a second, and warm throughput pre-warms it
# (docs/performance.md, "One viral code": what the table level needs).
TABLE_WRITE_QUOTA = 40_000


def table_write_units(sizes: dict[str, int], offered: int = OFFERED_PER_SECOND) -> dict[str, int]:
    """Write units a second each table and index takes when `offered` sign-ups a second are all admitted: what the
    table-level limits (which the simulation, holding partitions, does not) must allow."""
    units = {name: write_units(size) for name, size in sizes.items()}
    per_signup = {
        "CustomersTable": TRANSACTIONAL * units["customer"],
        "CodesTable": TRANSACTIONAL * units["code"],
        "ReferralCountsTable": TRANSACTIONAL * units["count"],
        "ReferralsTable": TRANSACTIONAL * (units["referral"] + units["outbox"]) + units["outbox"],
        "ReferralsTable index ByReferrerShard": units["referral"],
        "ReferralsTable index Due": units["referral"] + 2 * units["outbox"],
        "InvitesTable": TRANSACTIONAL * units["velocity"],
    }
    return {name: value * offered for name, value in per_signup.items()}


# ---------- the simulation ----------


class Partition:
    """Write units (and reads) taken in the last second by one partition, or one isolated item."""

    __slots__ = ("load", "offered", "peak", "reads", "writes")

    def __init__(self) -> None:
        self.writes: deque[tuple[int, int]] = deque()
        self.load = 0
        self.reads: deque[int] = deque()
        self.peak = 0
        self.offered = 0  # units asked of it by first attempts: what it would have to take

    def has_room(self, now: int, units: int) -> bool:
        while self.writes and self.writes[0][0] <= now - 1000:
            self.load -= self.writes.popleft()[1]
        return self.load + units <= PARTITION_WRITE_UNITS

    def write(self, now: int, units: int) -> None:
        self.writes.append((now, units))
        self.load += units
        self.peak = max(self.peak, self.load)

    def read(self, now: int) -> bool:
        while self.reads and self.reads[0] <= now - 1000:
            self.reads.popleft()
        if len(self.reads) >= ITEM_READS_PER_SECOND:
            return False
        self.reads.append(now)
        return True


@dataclass
class _SignUp:
    attempt: int = 0
    seen: int = 1  # the shard count the code item said
    shard: int = 0
    contended: bool = False
    reread: bool = False  # read the code again before the next attempt (grow_on_throttle)


@dataclass
class _State:
    design: Design
    units: dict[str, int]
    partitions: dict[tuple[Any, ...], Partition] = field(default_factory=dict)

    def partition(self, key: tuple[Any, ...]) -> Partition:
        found = self.partitions.get(key)
        if found is None:
            found = self.partitions[key] = Partition()
        return found


def _due_shard(seq: int, shards: int) -> int:
    # As storage.due_shard: the friend's id hashed; distinct friends, so the shards fill evenly.
    return zlib.crc32(f"friend-{seq}".encode()) % shards


def _count_key(design: Design, shard: int) -> tuple[Any, ...]:
    return ("count item", shard if design.count_items_isolated else "one partition")


def _transaction(state: _State, signup: _SignUp, seq: int) -> list[tuple[tuple[Any, ...], int]]:
    """The shared partitions one attempt writes, and how many units each."""
    design, units = state.design, state.units
    writes: list[tuple[tuple[Any, ...], int]] = [(_count_key(design, signup.shard), TRANSACTIONAL)]
    if design.indexes:
        referrer_key = ("ByReferrer", signup.shard if design.referrer_index_sharded else "referrer")
        writes.append((referrer_key, units["ByReferrer"]))
        writes.append((("Due", _due_shard(seq, design.due_shards)), units["Due (transaction)"]))
    return writes


def transact(state: _State, writes: list[tuple[tuple[Any, ...], int]], now: int, first: bool = False) -> list[Any]:
    """All the writes or none: the keys of the partitions (base or index) that had no room, nothing written if any.
    A throttled index refuses the base-table write, and a transaction is refused whole."""
    partitions = [(state.partition(key), key, units) for key, units in writes]
    if first:
        for partition, _, units in partitions:
            partition.offered += units
    throttled = [key for partition, key, units in partitions if not partition.has_room(now, units)]
    if not throttled:
        for partition, _, units in partitions:
            partition.write(now, units)
    return throttled


def simulate(
    design: Design, seed: int = 7, offered: int = OFFERED_PER_SECOND, seconds: int = SECONDS
) -> dict[str, Any]:
    rng = random.Random(seed)
    sizes = item_sizes()
    state = _State(design, signup_units(sizes, design))
    code, referrer = state.partition(("code item",)), state.partition(("referrer's account",))
    counts: dict[int, int] = {}
    shard_count = 1
    cache: dict[int, tuple[int, int]] = {}  # environment -> (read at, shard count seen)
    signups: dict[int, _SignUp] = {}
    admitted_by_second = [0] * seconds
    refused = deletes_left = 0
    queue: list[tuple[int, int, int]] = []  # (time ms, kind: 0 sign-up, 1 outbox delete, sequence)
    for ms in range(seconds * 1000):
        for n in range(offered // 1000):
            heapq.heappush(queue, (ms, 0, ms * (offered // 1000) + n))
    delete_attempts: dict[int, int] = {}
    read_attempts: dict[int, int] = {}

    def backoff(now: int, attempt: int) -> int:
        return now + 1 + int(rng.uniform(0, 10 * 2**attempt))

    def spread(now: int, seq: int, signup: _SignUp, shard_count: int) -> int:
        """Double the shard count from the one this registration saw: a conditional transaction on the code
        item and the referrer's account (storage.grow_count_shards); this environment forgets the code."""
        cache.pop(seq % ENVIRONMENTS, None)
        target = counting.grown(signup.seen)
        if target <= signup.seen:
            return shard_count  # at the cap: nothing to ask
        if not (code.has_room(now, TRANSACTIONAL) and referrer.has_room(now, TRANSACTIONAL)):
            return shard_count  # throttled: the next contention asks again
        code.write(now, TRANSACTIONAL)  # charged even when its condition fails (someone grew it first)
        referrer.write(now, TRANSACTIONAL)
        return target if signup.seen == shard_count else shard_count

    while queue:
        now, kind, seq = heapq.heappop(queue)
        if kind == 1:  # the outbox delete after PutEvents: BatchWriteItem, no transaction, leaves `Due` too
            due = state.partition(("Due", _due_shard(seq, design.due_shards)))
            if seq not in delete_attempts:
                due.offered += state.units["Due (outbox delete)"]
            if due.has_room(now, state.units["Due (outbox delete)"]):
                due.write(now, state.units["Due (outbox delete)"])
            else:
                tried = delete_attempts[seq] = delete_attempts.get(seq, 0) + 1
                if tried < DELETE_ATTEMPTS:
                    heapq.heappush(queue, (backoff(now, tried), 1, seq))
                else:
                    deletes_left += 1  # stays in the outbox: the reconciliation publishes and deletes it later
            continue
        signup = signups.get(seq)
        if signup is None or signup.reread:  # read the code (its cache first) and pick a shard
            environment = seq % ENVIRONMENTS
            cached = cache.get(environment)
            if design.code_cache and cached and now - cached[0] < CODE_CACHE_MS:
                seen = cached[1]
            elif code.read(now):
                seen = shard_count
                cache[environment] = (now, seen)
            else:  # the code's read throttled: BatchGetItem retries what is unprocessed, then gives up (Busy)
                tried = read_attempts[seq] = read_attempts.get(seq, 0) + 1
                if tried < ATTEMPTS:
                    heapq.heappush(queue, (backoff(now, tried - 1), 0, seq))
                else:
                    refused += 1
                continue
            shard = counting.pick_shard(seen, rng) if design.count_shards else 0
            first = signup is None
            if signup is None:
                signup = signups[seq] = _SignUp()
            signup.seen, signup.shard, signup.reread = seen, shard, False
        else:
            first = False
        throttled = transact(state, _transaction(state, signup, seq), now, first)
        if not throttled:
            counts[signup.shard] = counts.get(signup.shard, 0) + 1
            if now < seconds * 1000:
                admitted_by_second[now // 1000] += 1
            else:
                admitted_by_second[-1] += 1
            del signups[seq]
            if design.indexes:
                heapq.heappush(queue, (now + PUBLISH_MS, 1, seq))
            if signup.contended and design.count_shards and not design.grow_on_throttle:
                shard_count = spread(now, seq, signup, shard_count)  # as the layer did before (BEFORE): after success
            continue
        # Refused whole: nothing written. The layer notices only its count item's throttle (storage.create_account).
        count_throttled = _count_key(design, signup.shard) in throttled
        signup.contended = signup.contended or count_throttled
        if count_throttled and design.count_shards and design.grow_on_throttle:
            shard_count = spread(now, seq, signup, shard_count)
            signup.reread = True
        signup.attempt += 1
        if signup.attempt < ATTEMPTS:
            heapq.heappush(queue, (backoff(now, signup.attempt - 1), 0, seq))
        else:
            refused += 1
            del signups[seq]

    admitted = sum(admitted_by_second)
    # The rate once the count has spread: the median second, the last one left out (it also takes the retries
    # that end after the offered load does).
    steady = sorted(admitted_by_second[:-1])[(seconds - 1) // 2] if seconds > 1 else admitted

    def hottest(index: str) -> tuple[int, float]:
        found = [p for key, p in state.partitions.items() if key[0] == index]
        if not found:
            return 0, 0.0
        return max(p.peak for p in found), max(p.offered for p in found) / seconds

    items = [p for key, p in state.partitions.items() if key[0] in ("count item", "code item", "referrer's account")]
    return {
        "design": design.name,
        "admitted_per_second": admitted / seconds,
        "admitted_by_second": admitted_by_second,
        "steady_per_second": steady,
        "refused": refused,
        "count_exact": sum(counts.values()) == admitted,
        "shards": shard_count,
        "hottest_item_write_units_per_second": max(p.peak for p in items),
        "hottest_item_writes_per_second": max(p.peak for p in items) // TRANSACTIONAL,
        "by_referrer_peak": hottest("ByReferrer")[0],
        "by_referrer_offered": hottest("ByReferrer")[1],
        "due_peak": hottest("Due")[0],
        "due_offered": hottest("Due")[1],
        "outbox_deletes_left": deletes_left,
        "units_per_signup": state.units,
        "sizes": sizes,
    }


def _admitted_row(figure: str, result: dict[str, Any], naive: dict[str, Any]) -> dict[str, Any]:
    return {
        "figure": figure,
        "unit": "/s",
        "value": result["admitted_per_second"],
        "baseline": naive["admitted_per_second"],
        "baseline_name": NAIVE.name,
        "ratio": round(result["admitted_per_second"] / naive["admitted_per_second"], 1),
        "steady_per_second": result["steady_per_second"],
        "by_second": result["admitted_by_second"],
        "refused": result["refused"],
        "baseline_refused": naive["refused"],
    }


def run() -> list[dict[str, Any]]:
    naive, today, shared = simulate(NAIVE), simulate(TODAY), simulate(SHARED_COUNT_KEY)
    before, previous = simulate(BEFORE), simulate(PREVIOUS)
    offered = f"{OFFERED_PER_SECOND:,}"
    rows = [
        _admitted_row(f"viral code: sign-ups admitted/s of {offered}, the layer today", today, naive),
        _admitted_row(
            f"viral code: sign-ups admitted/s of {offered}, the layer at 3935f5e (ByReferrer on referrerId)",
            previous,
            naive,
        ),
        _admitted_row(
            f"viral code: sign-ups admitted/s of {offered}, the layer before (4 due shards, grown after success)",
            before,
            naive,
        ),
        _admitted_row(
            f"viral code: sign-ups admitted/s of {offered}, today but the count shards under one key",
            shared,
            naive,
        ),
        {
            "figure": "viral code: count exact (sum of shards = accounts), today",
            "unit": "",
            "value": today["count_exact"],
            "baseline": naive["count_exact"],
            "baseline_name": "one count item",
            "ratio": 1.0,
        },
        {
            "figure": "viral code: hottest item writes/s, today",
            "unit": "/s",
            "value": today["hottest_item_writes_per_second"],
            "baseline": counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND,
            "baseline_name": "transactional ceiling",
            "ratio": round(today["hottest_item_writes_per_second"] / counting.ITEM_TRANSACTIONAL_WRITES_PER_SECOND, 2),
        },
    ]
    tables = table_write_units(item_sizes())
    busiest = max(tables, key=lambda name: tables[name])
    rows.append(
        {
            "figure": f"viral code: {busiest} WU/s at {offered} sign-ups/s (table level, not simulated)",
            "unit": "WU/s",
            "value": tables[busiest],
            "baseline": TABLE_WRITE_QUOTA,
            "baseline_name": "default on-demand table quota",
            "ratio": round(tables[busiest] / TABLE_WRITE_QUOTA, 2),
        }
    )
    for label, result in (("before", before), ("at 3935f5e", previous), ("today", today)):
        for index, key in (("ByReferrer", "by_referrer"), ("Due", "due")):
            rows.append(
                {
                    "figure": f"viral code: hottest {index} partition WU/s, {label} "
                    f"(asked {result[key + '_offered']:,.0f})",
                    "unit": "WU/s",
                    "value": result[key + "_peak"],
                    "baseline": PARTITION_WRITE_UNITS,
                    "baseline_name": "partition ceiling",
                    "ratio": round(result[key + "_peak"] / PARTITION_WRITE_UNITS, 2),
                    "asked": result[key + "_offered"],
                }
            )
    return rows


def main() -> None:
    """Every design side by side, and what one sign-up writes (docs/performance.md, "One viral code")."""
    print("bytes per item:", item_sizes())
    print("write units per sign-up:", signup_units(item_sizes(), TODAY))
    tables = table_write_units(item_sizes())
    print(f"table level at {OFFERED_PER_SECOND:,}/s (WU/s, quota {TABLE_WRITE_QUOTA:,}):", tables)
    print(
        "| design | admitted/s (10 s) | steady /s | by second | refused | count exact | count shards "
        "| hottest item WU/s | ByReferrer hottest partition WU/s (asked) | Due hottest partition WU/s (asked) "
        "| outbox deletes left |"
    )
    print("|" + " --- |" * 11)
    for design in DESIGNS:
        r = simulate(design)
        by_second = " ".join(f"{n:,}" for n in r["admitted_by_second"])
        print(
            f"| {design.name} | {r['admitted_per_second']:,.0f} | {r['steady_per_second']:,} | {by_second} "
            f"| {r['refused']:,} | {r['count_exact']} | {r['shards']} | {r['hottest_item_write_units_per_second']} "
            f"| {r['by_referrer_peak']:,} ({r['by_referrer_offered']:,.0f}) "
            f"| {r['due_peak']:,} ({r['due_offered']:,.0f}) "
            f"| {r['outbox_deletes_left']:,} |"
        )


if __name__ == "__main__":
    main()
