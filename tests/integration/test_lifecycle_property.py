"""The lifecycle as a property: random orders, cancels and refunds, delivered in any order, some twice, with
reconciliation runs in between; the outcome is always at most one reward, and the right one.

"The right one" comes from an oracle written apart from the code under test: the first order (by the time it
was placed) of at least 30.00 in the site's currency, placed after registration, that was neither cancelled
nor refunded under 30.00 inside its 14 days. A run at time T only ever runs after every event timed before T
was delivered (what a run can know); among themselves, events arrive in any order, and duplicates repeat
the very envelope (as EventBridge retries do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from referrals import formats, storage
from tests.conftest import new_id
from tests.integration.rewards_helpers import Bus, deliver, order_event, reconcile, referral

pytestmark = pytest.mark.usefixtures("aws_env", "stale_reads")  # reads as DynamoDB serves them

MINIMUM = Decimal("30.00")
WINDOW = timedelta(days=14)


@dataclass
class OrderHistory:
    order_id: str
    placed: int  # minutes after the start
    amount: str
    currency: str
    cancelled: int | None  # minutes after placing
    refunds: list[tuple[str, int, str]] = field(default_factory=list)  # (amount, minutes after placing, currency)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[OrderHistory], list[int], list[int]]:
    orders = []
    for index in range(draw(st.integers(1, 4))):
        amounts = draw(st.lists(st.sampled_from(["5.00", "10.00", "20.00", "50.00"]), max_size=2, unique=True))
        orders.append(
            OrderHistory(
                order_id=f"o-{index}",
                placed=draw(st.integers(0, 30 * 24 * 60)),
                amount=draw(st.sampled_from(["10.00", "29.99", "30.00", "45.00", "80.00"])),
                currency=draw(st.sampled_from(["GBP", "GBP", "GBP", "EUR"])),
                cancelled=draw(st.none() | st.integers(0, 20 * 24 * 60)),
                refunds=[
                    (a, draw(st.integers(0, 20 * 24 * 60)), draw(st.sampled_from(["GBP", "GBP", "EUR"])))
                    for a in amounts
                ],
            )
        )
    events = sum(len(_events_of(o)) for o in orders)
    duplicates = draw(st.lists(st.integers(0, events - 1), max_size=4))
    order = draw(st.permutations(list(range(events)) + duplicates))
    runs = draw(st.lists(st.integers(0, 50 * 24 * 60), max_size=3))
    return orders, order, runs


def _events_of(order: OrderHistory) -> list[tuple[int, str, tuple]]:
    """(minute, detail type, arguments) of every event about one order."""
    found = [(order.placed, "OrderPlaced", (order.amount, order.currency))]
    if order.cancelled is not None:
        found.append((order.placed + order.cancelled, "OrderCancelled", ()))
    found += [(order.placed + after, "OrderRefunded", (amount, cur)) for amount, after, cur in order.refunds]
    return found


def oracle(orders: list[OrderHistory]) -> str | None:
    """The order that earns the reward, or None."""
    for order in sorted(orders, key=lambda o: (o.placed, o.order_id)):
        if order.currency != "GBP" or Decimal(order.amount) < MINIMUM:
            continue
        window = 14 * 24 * 60
        if order.cancelled is not None and order.cancelled < window:
            continue
        refunded = sum((Decimal(a) for a, after, cur in order.refunds if cur == "GBP" and after < window), Decimal(0))
        if Decimal(order.amount) - refunded < MINIMUM:
            continue
        return order.order_id
    return None


def linked_friend(friend: str, registered: datetime, **flags: str) -> None:
    """A friend linked to a new referrer, as registration writes it (registration is tested on its own);
    `flags` (review, review_reason) as a flagged sign-up writes them."""
    pk, sk = storage.ReferralItem.key_for(friend)
    item = storage.ReferralItem(
        pk,
        sk,
        referee_id=friend,
        referrer_id=new_id("referrer"),
        site="default",
        code="ABCD2345",
        status="REGISTERED",
        friend_name="Fran F.",
        created_at=formats.iso(registered),
        **flags,
    )
    item.due_shard = storage.due_shard(friend)
    item.due_at = formats.iso(registered + timedelta(days=365))
    item.save()


def _forget(friend: str) -> None:
    """Keep the table small between examples: moto copies a whole table for every transaction item."""
    ledger = storage.load_ledger(friend)
    with storage.ReferralItem.batch_write() as batch:
        for item in [ledger.referral, *ledger.facts]:
            if item is not None:
                batch.delete(item)


def delivery_sequence(orders, delivery, runs, friend: str, start: datetime) -> list[tuple[str, object]]:
    """The orders' events in the shuffled delivery order, with each reconciliation run (minutes after `start`)
    placed after every event timed before it: ("event", (minute, envelope)) and ("run", minute) steps."""
    envelopes = []
    for order in orders:
        for minute, detail_type, arguments in _events_of(order):
            amount, currency = arguments if arguments else (None, "GBP")
            moment = start + timedelta(minutes=minute)
            envelopes.append((minute, order_event(detail_type, order.order_id, friend, moment, amount, currency)))
    sequence: list[tuple[str, object]] = [("event", envelopes[i]) for i in delivery]
    for run in sorted(runs):
        before = [k for k, (kind, item) in enumerate(sequence) if kind == "event" and item[0] < run]
        runs_so_far = [k for k, (kind, _) in enumerate(sequence) if kind == "run"]
        sequence.insert(max([-1, *before, *runs_so_far]) + 1, ("run", run))
    return sequence


@settings(
    # 30 keeps the suite quick; REWARDS_PROPERTY_EXAMPLES=1000 for a deeper search.
    max_examples=int(os.environ.get("REWARDS_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories())
def test_any_delivery_gives_at_most_one_reward_and_the_right_one(history):
    orders, delivery, runs = history
    bus = Bus()
    friend = new_id("friend")
    registered = datetime(2031, 1, 1, tzinfo=UTC)
    start = registered + timedelta(hours=1)
    linked_friend(friend, registered)

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=minute)

    sequence = delivery_sequence(orders, delivery, runs, friend, start)

    for kind, item in sequence:
        if kind == "event":
            assert deliver(item[1])["outcome"] in {"RECORDED", "DUPLICATE", "SETTLED"}
        else:
            reconcile(at(item), settle=False)  # a run racing the delivery before it: the index may lag
    reconcile(registered + timedelta(days=400))
    reconcile(registered + timedelta(days=400))

    expected = oracle(orders)
    event("earns" if expected else "does not earn")
    earned = bus.rewards(friend)
    assert len(earned) <= 1
    assert [e["detail"]["orderId"] for e in earned] == ([expected] if expected else [])
    final = referral(friend)
    assert (final.status == "EARNED") == (expected is not None)
    if expected:
        assert final.earned_order_id == expected
        assert earned[0]["detail"]["reward"] == {"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}
    _forget(friend)
