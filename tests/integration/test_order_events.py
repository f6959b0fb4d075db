"""Order events through the order-events function on moto: facts recorded, referral moved, events announced."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from devserver.stack import REGION
from referrals import storage
from tests.conftest import load_event, new_id
from tests.integration.helpers import function, register
from tests.integration.rewards_helpers import (
    Bus,
    cancelled,
    deliver,
    placed,
    reconcile,
    referral,
    referred_friend,
    refunded,
)

pytestmark = pytest.mark.usefixtures("aws_env")


def _dead_letters() -> list[dict]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="OrderEventsDeadLetterQueue")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return messages.get("Messages", [])


def test_sample_events_invoke_the_handler():
    # Given the samples sam local invoke takes (their customer has no referral here)
    for name in ("order-placed.json", "order-cancelled.json", "order-refunded.json"):
        # When each is delivered
        answer = function("OrderEventsFunction").invoke(load_event(name))
        # Then it is understood and, for a customer nobody referred, ignored
        assert answer["outcome"] == "NOT_REFERRED"


def test_qualifying_order_makes_the_referral_pending_and_announces_it(calls):
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    # When the friend's first order of 45.00 GBP is placed
    calls.reset()
    answer = deliver(placed("o-1", pair.friend, at))
    # Then the referral is pending on that order until the window closes, and ReferralQualified is published
    assert answer["outcome"] == "RECORDED" and answer["status"] == "PENDING"
    assert calls.count() == {"Query": 1, "TransactWriteItems": 1, "PutEvents": 1, "BatchWriteItem": 1}
    item = referral(pair.friend)
    assert item.status == "PENDING" and item.pending_order_id == "o-1"
    assert item.window_ends_at.startswith((at + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%S"))
    (qualified,) = bus.events("ReferralQualified", pair.friend)
    assert qualified["source"] == "referrals"
    assert qualified["detail"]["orderId"] == "o-1"
    assert qualified["detail"]["orderTotal"] == {"amount": "45.00", "currency": "GBP"}
    assert qualified["detail"]["idempotencyKey"] == f"ReferralQualified:{pair.friend}:o-1"


def test_registration_announces_the_friends_discount():
    bus = Bus()
    pair = referred_friend()
    (registered,) = bus.events("ReferralRegistered", pair.friend)
    assert registered["detail"]["referrerId"] == pair.referrer
    assert registered["detail"]["discount"] == {"type": "PERCENTAGE", "percent": 20}
    assert registered["detail"]["idempotencyKey"] == f"ReferralRegistered:{pair.friend}"


def test_self_referral_announces_nothing_and_never_earns():
    bus = Bus()
    referrer = new_id("referrer")
    code = register(referrer, "same.person@gmail.com")["data"]["customer"]["referralCode"]
    pair = referred_friend(referrer, code, email="Same.Person+alt@gmail.com")
    assert deliver(placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1)))["outcome"] == "NOT_ELIGIBLE"
    reconcile(pair.registered_at + timedelta(days=400))
    assert bus.events(referee=pair.friend) == []
    assert referral(pair.friend).eligible is False


def test_the_same_event_delivered_again_writes_nothing(calls):
    pair = referred_friend()
    event = placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1))
    deliver(event)
    calls.reset()
    # When EventBridge delivers it again (a retry, hours later)
    answer = deliver(event)
    # Then one read, no write
    assert answer["outcome"] == "DUPLICATE"
    assert calls.count() == {"Query": 1}


def test_events_of_customers_nobody_referred_cost_one_read(calls):
    calls.reset()
    answer = deliver(placed("o-1", new_id(), datetime.now(UTC)))
    assert answer["outcome"] == "NOT_REFERRED"
    assert calls.count() == {"Query": 1}


def test_eight_copies_at_once_record_one_fact_and_one_announcement():
    bus = Bus()
    pair = referred_friend()
    event = placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1))
    # When eight deliveries of the same event race
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(a["outcome"] for a in pool.map(lambda _: deliver(event), range(8)))
    # Then exactly one recorded it, the others found it done
    assert outcomes == ["DUPLICATE"] * 7 + ["RECORDED"]
    assert len(bus.events("ReferralQualified", pair.friend)) == 1
    assert referral(pair.friend).version == 1


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [("29.99", "GBP", "ORDER_BELOW_MINIMUM"), ("45.00", "EUR", "ORDER_CURRENCY_NOT_ACCEPTED")],
)
def test_an_order_that_cannot_qualify_records_why(amount, currency, reason):
    pair = referred_friend()
    answer = deliver(placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1), amount, currency))
    assert answer["status"] == "REGISTERED"
    assert referral(pair.friend).reason == reason


def test_threshold_is_inclusive():
    pair = referred_friend()
    assert deliver(placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1), "30.00"))["status"] == "PENDING"


def test_cancel_arriving_before_its_order_is_applied_when_the_order_arrives():
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    # Given the cancel is delivered first
    assert deliver(cancelled("o-1", pair.friend, at + timedelta(days=2)))["status"] == "REGISTERED"
    # When the order arrives
    answer = deliver(placed("o-1", pair.friend, at))
    # Then it never becomes pending: it fell inside its window
    assert answer["status"] == "REVERSED"
    assert referral(pair.friend).reason == "ORDER_CANCELLED"
    assert bus.events("ReferralQualified", pair.friend) == []


def test_cancel_inside_the_window_reverses_and_announces():
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    answer = deliver(cancelled("o-1", pair.friend, at + timedelta(days=3)))
    assert answer["status"] == "REVERSED" and answer["announced"] == ["ReferralReversed"]
    (reversal,) = bus.events("ReferralReversed", pair.friend)
    assert reversal["detail"]["orderId"] == "o-1" and reversal["detail"]["reason"] == "ORDER_CANCELLED"


def test_refunds_add_up_and_reverse_only_under_the_minimum():
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at, "50.00"))
    # 50 - 10 = 40 stands; the same refund delivered again is not counted twice
    first = refunded("o-1", pair.friend, at + timedelta(days=1), "10.00")
    assert deliver(first)["status"] == "PENDING"
    assert deliver(first)["outcome"] == "DUPLICATE"
    # 40 - 15 = 25 falls under 30
    assert deliver(refunded("o-1", pair.friend, at + timedelta(days=2), "15.00"))["status"] == "REVERSED"
    assert referral(pair.friend).reason == "ORDER_REFUNDED"


def test_a_later_qualifying_order_may_still_earn_after_the_first_falls():
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    deliver(cancelled("o-1", pair.friend, at + timedelta(days=1)))
    assert deliver(placed("o-2", pair.friend, at + timedelta(days=5), "31.00"))["status"] == "PENDING"
    reconcile(at + timedelta(days=19, hours=1))
    (reward,) = bus.rewards(pair.friend)
    assert reward["detail"]["orderId"] == "o-2"


def test_an_earlier_order_delivered_late_takes_the_place_of_a_later_one():
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-later", pair.friend, at + timedelta(days=2)))
    deliver(placed("o-first", pair.friend, at))
    assert referral(pair.friend).pending_order_id == "o-first"


def test_events_after_the_reward_change_nothing(calls):
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    reconcile(at + timedelta(days=15))
    calls.reset()
    # A cancel after the window (and a new order) once the reward is earned: read, nothing written
    assert deliver(cancelled("o-1", pair.friend, at + timedelta(days=20)))["outcome"] == "SETTLED"
    assert deliver(placed("o-2", pair.friend, at + timedelta(days=21)))["outcome"] == "SETTLED"
    assert calls.count() == {"Query": 2}
    assert len(bus.rewards(pair.friend)) == 1


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda e: e["detail"]["total"].update(amount=45.0), "total.amount"),  # a float: money is never a float
        (lambda e: e["detail"]["total"].update(amount="45,00"), "total.amount"),
        (lambda e: e["detail"]["total"].update(currency="gbp"), "total.currency"),
        (lambda e: e["detail"].pop("customerId"), "customerId"),
        (lambda e: e["detail"].update(orderId="o\n1"), "orderId"),
        (lambda e: e.update(time="yesterday"), "time"),
        (lambda e: e.update({"detail-type": "OrderShipped"}), ""),
        (lambda e: e.update(detail="{}"), "detail"),
    ],
    ids=["float", "comma", "lowercase-currency", "no-customer", "control-char", "bad-time", "unknown-type", "string"],
)
def test_malformed_event_is_dead_lettered_counted_and_never_rewarded(mutate, problem, capsys):
    bus = Bus()
    pair = referred_friend()
    event = placed("o-bad", pair.friend, pair.registered_at + timedelta(hours=1))
    mutate(event)
    capsys.readouterr()
    # When it is delivered
    answer = deliver(event)
    # Then it is refused without raising (a retry cannot mend it), named, dead-lettered and counted
    assert answer["outcome"] == "MALFORMED"
    assert any(problem in p for p in answer["problems"])
    (message,) = _dead_letters()
    assert json.loads(message["Body"])["id"] == event["id"]
    assert message["MessageAttributes"]["Reason"]["StringValue"] == "MALFORMED"
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("OrderEventsMalformed") == [1.0] or m.get("OrderEventsMalformed") == 1.0 for m in metrics)
    # And nothing about the referral moved
    assert referral(pair.friend).status == "REGISTERED"
    assert bus.events("ReferralQualified", pair.friend) == []


def test_a_malformed_event_does_not_hold_up_the_good_ones():
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    bad = placed("o-bad", pair.friend, at)
    bad["detail"]["total"]["amount"] = 99.0
    answers = [deliver(e) for e in (bad, placed("o-1", pair.friend, at), bad)]
    assert [a["outcome"] for a in answers] == ["MALFORMED", "RECORDED", "MALFORMED"]
    assert referral(pair.friend).pending_order_id == "o-1"


def test_an_unknown_order_id_with_a_hash_cannot_forge_another_orders_fact():
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    # An order literally named "o-1#CANCELLED" must not read as o-1's cancellation
    deliver(placed("o-1#CANCELLED", pair.friend, at + timedelta(minutes=1), "5.00"))
    assert referral(pair.friend).status == "PENDING"
    keys = {f.sk for f in storage.load_ledger(pair.friend).facts}
    assert "ORDER#o-1%23CANCELLED" in keys


def test_an_order_id_too_large_for_a_key_is_malformed_and_the_largest_allowed_fits():
    # 128 characters of 4 UTF-8 bytes: quoted, 1,536 bytes, over DynamoDB's 1,024-byte sort key
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    worst = "\U0001f600" * 128
    answer = deliver(refunded(worst, pair.friend, at, "5.00"))
    assert answer["outcome"] == "MALFORMED"
    assert any("orderId" in p for p in answer["problems"])
    # 200 bytes of UTF-8 (50 characters of 4 bytes) is the bound: its longest key, a refund's, fits
    largest = "\U0001f600" * 50
    assert deliver(placed(largest, pair.friend, at))["outcome"] == "RECORDED"
    assert deliver(refunded(largest, pair.friend, at + timedelta(hours=1), "5.00"))["outcome"] == "RECORDED"
    assert referral(pair.friend).pending_order_id == largest
