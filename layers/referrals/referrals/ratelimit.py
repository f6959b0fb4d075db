"""Token buckets as GCRA (the generic cell rate algorithm): pure arithmetic, no storage.

A bucket of `capacity` tokens refilled at `refill` tokens per `period` is one stored number, the
theoretical arrival time (TAT): the moment the bucket would be full again. Taking `cost` tokens at
`now` is allowed when `max(TAT, now) + cost * interval - now <= tolerance`, and moves the TAT there.

`max()` is the one thing a DynamoDB update expression cannot say, so storage tries one of two
conditional updates, each of which is exact on its own side of `TAT = now`:

- `fresh`:  the TAT is absent or already past (the bucket is full) -> `SET tat = now + cost * interval`;
- `queued`: the TAT is still the one a refusal returned (`seen`), which lies ahead but leaves room for `cost`
            -> `SET tat = seen + cost * interval` (a compare-and-set: an absolute value, never `tat + ...`).

Both write an absolute value, so the same request applied twice (botocore sending it again after its answer was
lost) charges once: the second is refused, and the refusal shows the value we wrote (storage recognises its own
write by it and a writer id: docs/faults.md, "Lost answers").

Each is a single atomic conditional write, so concurrent callers serialise on the item and no
interleaving admits more than `capacity + refill * elapsed / period` tokens (tests/unit/test_ratelimit.py
proves it with hypothesis). A refused attempt returns the stored TAT (ReturnValuesOnConditionCheckFailure),
which tells which update to try next, or that the caller is limited and for how long: one request for a
full bucket or a refusal, two when the bucket is part-spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SECOND_MS = 1_000


@dataclass(frozen=True)
class Bucket:
    """`name` is the bucket a client sees in errorInfo; times are integer milliseconds since the epoch."""

    name: str
    capacity: int
    refill: int
    period_ms: int

    @property
    def interval_ms(self) -> int:
        """Time to earn one token, rounded up so rounding never grants more than the rate."""
        return math.ceil(self.period_ms / self.refill)

    @property
    def tolerance_ms(self) -> int:
        """How far ahead of now the TAT may run: the time to refill a whole bucket."""
        return self.capacity * self.interval_ms

    def increment(self, cost: int) -> int:
        return cost * self.interval_ms

    def queued_ceiling(self, now_ms: int, cost: int) -> int:
        """The highest stored TAT from which `cost` more tokens still fit."""
        return now_ms + self.tolerance_ms - self.increment(cost)

    def expires_at(self, now_ms: int) -> int:
        """Epoch seconds after which the item says nothing an absent item would not: the TAT never runs
        past now + tolerance, and once it is past the bucket is full. DynamoDB's TTL removes it then."""
        return math.ceil((now_ms + self.tolerance_ms) / SECOND_MS) + 1

    def retry_after_seconds(self, stored_tat_ms: int, now_ms: int, cost: int) -> int:
        """Whole seconds until `cost` tokens fit, at least one."""
        wait_ms = stored_tat_ms - self.queued_ceiling(now_ms, cost)
        return max(1, math.ceil(wait_ms / SECOND_MS))


@dataclass(frozen=True)
class Decision:
    admitted: bool
    new_tat_ms: int | None = None
    retry_after_seconds: int = 0


def decide(bucket: Bucket, stored_tat_ms: int | None, now_ms: int, cost: int) -> Decision:
    """The GCRA rule itself, for one caller seeing the stored TAT (None when there is no item)."""
    if cost > bucket.capacity:
        raise ValueError("a cost above the bucket's capacity can never be admitted")
    if stored_tat_ms is None or stored_tat_ms < now_ms:
        return Decision(True, now_ms + bucket.increment(cost))
    if stored_tat_ms <= bucket.queued_ceiling(now_ms, cost):
        return Decision(True, stored_tat_ms + bucket.increment(cost))
    return Decision(False, retry_after_seconds=bucket.retry_after_seconds(stored_tat_ms, now_ms, cost))


@dataclass(frozen=True)
class Attempt:
    """One conditional write of the protocol storage runs: `fresh` (SET tat = new_tat when the TAT is absent
    or before now) or `queued` (SET tat = new_tat = seen + increment when the TAT is still `seen`)."""

    fresh: bool
    new_tat_ms: int
    increment_ms: int
    floor_ms: int
    ceiling_ms: int
    seen_tat_ms: int | None = None  # queued: the stored TAT the refusal returned (floor <= seen <= ceiling)

    def holds(self, stored_tat_ms: int | None) -> bool:
        """The write's condition, as DynamoDB evaluates it on the stored item."""
        if self.fresh:
            return stored_tat_ms is None or stored_tat_ms < self.floor_ms
        return stored_tat_ms is not None and stored_tat_ms == self.seen_tat_ms

    def apply(self, stored_tat_ms: int | None) -> int:
        """The TAT the write leaves (only meaningful where `holds`): an absolute value either way."""
        return self.new_tat_ms


def first_attempt(bucket: Bucket, now_ms: int, cost: int) -> Attempt:
    """Try `fresh` first: a bucket untouched for a while (the usual case) needs no second request."""
    return _attempt(bucket, now_ms, cost, fresh=True)


def after_refusal(bucket: Bucket, now_ms: int, cost: int, stored_tat_ms: int | None) -> Attempt | Decision:
    """What to do once a write was refused and returned the stored TAT: refuse the caller, or the write that fits."""
    decision = decide(bucket, stored_tat_ms, now_ms, cost)
    if not decision.admitted:
        return decision
    if stored_tat_ms is None or stored_tat_ms < now_ms:
        return _attempt(bucket, now_ms, cost, fresh=True)
    return queued_attempt(bucket, now_ms, cost, stored_tat_ms)


def _attempt(bucket: Bucket, now_ms: int, cost: int, fresh: bool) -> Attempt:
    increment = bucket.increment(cost)
    return Attempt(fresh, now_ms + increment, increment, now_ms, bucket.queued_ceiling(now_ms, cost))


def queued_attempt(bucket: Bucket, now_ms: int, cost: int, seen_tat_ms: int) -> Attempt:
    """The queued write from a TAT `seen` ahead of now: SET tat = seen + increment, if it is still `seen`."""
    increment = bucket.increment(cost)
    return Attempt(False, seen_tat_ms + increment, increment, now_ms, bucket.queued_ceiling(now_ms, cost), seen_tat_ms)


def invite_bucket(capacity: int, refill_per_day: int) -> Bucket:
    return Bucket("REFERRAL_EMAIL", capacity, refill_per_day, DAY_MS)


def site_send_bucket(sends_per_second: int, burst_seconds: int) -> Bucket:
    return Bucket("REFERRAL_EMAIL", sends_per_second * burst_seconds, sends_per_second, SECOND_MS)


def lookup_bucket(capacity: int, refill_per_hour: int) -> Bucket:
    return Bucket("REFERRAL_CODE_LOOKUP", capacity, refill_per_hour, HOUR_MS)
