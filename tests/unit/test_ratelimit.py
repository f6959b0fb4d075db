"""GCRA token buckets: the rule, and the two-write protocol storage runs, under every interleaving.

The protocol's writes (ratelimit.Attempt) are each one atomic conditional UpdateItem. Here they run
against a single stored number with hypothesis choosing how concurrent callers interleave; the moto
test in tests/integration/test_invites.py checks that DynamoDB evaluates each write as `holds`/`apply` say.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from referrals.ratelimit import (
    DAY_MS,
    Attempt,
    Decision,
    after_refusal,
    decide,
    first_attempt,
    invite_bucket,
    lookup_bucket,
    site_send_bucket,
)

BUCKET = invite_bucket(capacity=20, refill_per_day=20)
T0 = 1_764_000_000_000


def test_a_fresh_bucket_admits_its_capacity_and_then_refuses():
    tat = None
    for _ in range(20):
        decision = decide(BUCKET, tat, T0, 1)
        assert decision.admitted
        tat = decision.new_tat_ms
    refused = decide(BUCKET, tat, T0, 1)
    assert not refused.admitted
    # One token comes back every 72 minutes (a day / 20)
    assert refused.retry_after_seconds == 72 * 60


def test_tokens_come_back_at_the_refill_rate():
    tat = decide(BUCKET, None, T0, 20).new_tat_ms
    assert not decide(BUCKET, tat, T0 + BUCKET.interval_ms - 1, 1).admitted
    assert decide(BUCKET, tat, T0 + BUCKET.interval_ms, 1).admitted
    assert decide(BUCKET, tat, T0 + 5 * BUCKET.interval_ms, 5).admitted
    assert not decide(BUCKET, tat, T0 + 5 * BUCKET.interval_ms, 6).admitted


def test_an_idle_bucket_never_holds_more_than_its_capacity():
    tat = decide(BUCKET, None, T0, 1).new_tat_ms
    much_later = T0 + 30 * DAY_MS
    assert decide(BUCKET, tat, much_later, 20).admitted
    assert not decide(BUCKET, decide(BUCKET, tat, much_later, 20).new_tat_ms, much_later, 1).admitted


def test_the_item_may_expire_once_the_bucket_would_be_full_again():
    expires_s = BUCKET.expires_at(T0)
    tat = decide(BUCKET, None, T0, 20).new_tat_ms  # the latest a TAT can reach from now
    assert expires_s * 1000 >= tat
    assert expires_s * 1000 - tat <= 2000


def test_the_bucket_shapes():
    site = site_send_bucket(sends_per_second=14, burst_seconds=10)
    assert (site.capacity, site.refill, site.period_ms) == (140, 14, 1000)
    assert 1000 / site.interval_ms <= 14  # rounding never grants more than the SES rate
    assert lookup_bucket(20, 60).interval_ms == 60_000
    assert BUCKET.name == site.name == "REFERRAL_EMAIL"


# ---------- the protocol under concurrency ----------


@dataclass
class Caller:
    now_ms: int
    cost: int
    step: Attempt | Decision
    writes: int = 0


class Store:
    """One item's TAT; each write is atomic, as a DynamoDB conditional UpdateItem is."""

    def __init__(self) -> None:
        self.tat: int | None = None

    def write(self, attempt: Attempt) -> int | None:
        """None when written; else the stored TAT, as ReturnValuesOnConditionCheckFailure returns it."""
        if attempt.holds(self.tat):
            self.tat = attempt.apply(self.tat)
            return None
        return self.tat if self.tat is not None else -1


def run(calls: list[tuple[int, int]], schedule: list[int], capacity: int = 20, refill: int = 20) -> list[Caller]:
    """Run callers (arrival offset in ms, cost) to completion; the schedule names whose write goes next."""
    bucket = invite_bucket(capacity, refill)
    store = Store()
    callers = [Caller(T0 + at, cost, first_attempt(bucket, T0 + at, cost)) for at, cost in calls]
    pending = list(range(len(callers)))
    turn = 0
    while pending:
        caller = callers[pending[schedule[turn % len(schedule)] % len(pending)] if schedule else pending[0]]
        turn += 1
        assert isinstance(caller.step, Attempt)
        caller.writes += 1
        stored = store.write(caller.step)
        if stored is None:
            caller.step = Decision(True)
        elif caller.writes >= 6:
            caller.step = Decision(False)  # storage gives up (Busy): not admitted
        else:
            caller.step = after_refusal(bucket, caller.now_ms, caller.cost, None if stored == -1 else stored)
        pending = [i for i in pending if isinstance(callers[i].step, Attempt)]
    return callers


calls_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2 * DAY_MS), st.integers(min_value=1, max_value=10)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(calls=calls_strategy, schedule=st.lists(st.integers(min_value=0, max_value=1000), max_size=200))
def test_no_interleaving_admits_more_than_capacity_plus_refill(calls, schedule):
    callers = run(calls, schedule)
    admitted = [c for c in callers if isinstance(c.step, Decision) and c.step.admitted]
    # Over any window of arrival times [a, b]: at most capacity + refill for the time elapsed
    times = sorted({c.now_ms for c in callers})
    for i, start in enumerate(times):
        for end in times[i:]:
            spent = sum(c.cost for c in admitted if start <= c.now_ms <= end)
            assert spent <= 20 + (end - start) // BUCKET.interval_ms
    # and so, within any one day, never more than capacity plus one day's refill
    for start in times:
        assert sum(c.cost for c in admitted if start <= c.now_ms < start + DAY_MS) <= 20 + 20


@settings(max_examples=200, deadline=None)
@given(calls=calls_strategy)
def test_callers_one_after_another_get_exactly_what_the_rule_says(calls):
    # Given callers arriving in time order, none overlapping
    ordered = sorted(calls)
    callers = run(ordered, [])
    # Then each is admitted exactly when the GCRA rule admits it, within two writes
    tat = None
    for caller in callers:
        expected = decide(BUCKET, tat, caller.now_ms, caller.cost)
        assert isinstance(caller.step, Decision) and caller.step.admitted == expected.admitted
        assert caller.writes <= 2
        if expected.admitted:
            tat = expected.new_tat_ms


@given(st.integers(min_value=1, max_value=20))
def test_a_full_bucket_admits_any_cost_it_can_hold_in_one_write(cost):
    (caller,) = run([(0, cost)], [])
    assert caller.step == Decision(True) and caller.writes == 1


def test_forty_concurrent_single_token_calls_admit_exactly_the_capacity():
    callers = run([(0, 1)] * 40, [7, 3, 11, 2, 5])
    assert sum(1 for c in callers if isinstance(c.step, Decision) and c.step.admitted) == 20
