"""An hour of DynamoDB refusing every write while events arrive, then recovery (docs/faults.md, "Delivery").

The events go as on AWS: the rule puts them on the function's queue, the event source mapping hands batches to
the function, a failed record returns after its backoff on the stand-in's clock (devserver/clock.py), which
the drill advances a minute at a time. In the end: every event applied once, nothing in a dead-letter queue,
nothing left in a source queue. Before the queues (Lambda's two retries, 1 and 2 minutes apart, then the
dead-letter queue) every one of these events was dead-lettered within three minutes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import boto3
import pytest

from devserver import consistency
from devserver.clock import CLOCK
from devserver.eventbridge import EventRouter
from devserver.lambdas import LocalFunction
from devserver.stack import REGION
from referrals import storage
from tests.conftest import load_event, new_id
from tests.faults import Plan
from tests.integration.helpers import register
from tests.integration.rewards_helpers import Bus, reconcile, referral, referred_friend, stamp

pytestmark = pytest.mark.usefixtures("aws_env")

_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class _Outage:
    """Plans for tests/faults.py: every attempt of every DynamoDB write fails (throttling and 5xx in turn) while
    the clock is before `until`."""

    def __init__(self, faults, until: float) -> None:
        self.faults, self.until, self.refused = faults, until, 0

    def __bool__(self) -> bool:
        return CLOCK.now() < self.until

    def __iter__(self) -> Iterator[Plan]:
        index, model = getattr(self.faults._state, "current", (0, None))
        if model is not None and model.service_model.service_name == "dynamodb" and model.name in _WRITES and self:
            self.refused += 1
            yield Plan(index, ("throttling", "internal")[self.refused % 2], attempts=1)


@pytest.fixture
def router(aws_env) -> EventRouter:
    functions = {name: LocalFunction(spec) for name, spec in aws_env.functions().items()}
    return EventRouter(functions, list(aws_env.of_type("AWS::Events::EventBus")), aws_env)


def _queue_depth(name: str) -> int:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def _run(router: EventRouter, faults, minutes: int, arrivals: dict[int, Callable[[], None]], until: int) -> _Outage:
    """Minute by minute for `until` minutes: the outage for the first `minutes`, each arrival at its minute."""
    outage = _Outage(faults, CLOCK.now() + minutes * 60)
    faults.plans = outage
    try:
        for minute in range(until):
            if minute in arrivals:
                arrivals[minute]()
            router.mappings.run_until_idle()
            CLOCK.advance(60)
    finally:
        faults.disarm()
    router.mappings.run_until_idle()
    return outage


def test_an_hour_of_refused_writes_loses_and_doubles_no_reward(router, faults):
    # Given two referred friends (registered before the outage; more from one address trip the abuse limits)
    pairs = []
    for _ in range(2):
        consistency.settle()  # each referrer's code has reached every reader before their friend registers
        pairs.append(referred_friend())
    bus = Bus()

    def order(i: int) -> Callable[[], None]:
        pair = pairs[i]
        detail = {"orderId": f"o-{i}", "customerId": pair.friend, "total": {"amount": "45.00", "currency": "GBP"}}
        entry = {
            "Source": "commerce.orders",
            "DetailType": "OrderPlaced",
            "Detail": json.dumps(detail),
            "Time": stamp(pair.registered_at + timedelta(hours=1)),
        }
        # The commerce system sends one order twice (two EventBridge events for the same order)
        return lambda: router.put_events({"Entries": [entry] * (2 if i == 0 else 1)})

    # When the store refuses every write for 60 minutes, while their first orders arrive (minutes 0 and 30)
    outage = _run(router, faults, 60, {30 * i: order(i) for i in range(2)}, until=90)
    assert outage.refused > 2  # every order was refused at least once
    # Then, once it recovers, each is applied once: nothing dead-lettered, nothing left on the queue
    assert router.dead_letters() == []
    assert _queue_depth("OrderEventsQueue") == 0 and _queue_depth("OrderEventsDeadLetterQueue") == 0
    for pair in pairs:
        assert referral(pair.friend).status == "PENDING"
    # And after the return window, exactly one reward per friend
    window_passed = max(p.registered_at for p in pairs) + timedelta(days=16)
    reconcile(window_passed)
    reconcile(window_passed)
    for pair in pairs:
        assert referral(pair.friend).status == "EARNED"
        assert len({e["detail"]["idempotencyKey"] for e in bus.rewards(pair.friend)}) == 1


def test_a_malformed_order_event_is_dead_lettered_at_once_and_never_retried(router):
    # Given an order event without a customer, among good ones
    consistency.settle()
    pair = referred_friend()
    bad = {"Source": "commerce.orders", "DetailType": "OrderPlaced", "Detail": json.dumps({"orderId": "o-x"})}
    good = {
        "Source": "commerce.orders",
        "DetailType": "OrderPlaced",
        "Detail": json.dumps(
            {"orderId": "o-1", "customerId": pair.friend, "total": {"amount": "45.00", "currency": "GBP"}}
        ),
        "Time": stamp(pair.registered_at + timedelta(hours=1)),
    }
    router.put_events({"Entries": [bad, good]})
    # Then the good one is applied, the bad one dead-lettered with its reason, and the queue is empty
    assert referral(pair.friend).status == "PENDING"
    (dead,) = router.dead_letters()
    assert dead["queue"] == "OrderEventsDeadLetterQueue" and dead["attributes"]["Reason"] == "MALFORMED"
    CLOCK.advance(3600)
    router.mappings.run_until_idle()
    assert _queue_depth("OrderEventsQueue") == 0 and len(router.dead_letters()) == 1


def _suppressions() -> list[dict]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    items = dynamodb.scan(TableName="InvitesTable")["Items"]
    return [i for i in items if any("suppress" in name.lower() for name in i)]


def test_bounces_and_complaints_during_twenty_minutes_of_refused_writes_are_suppressed_after(router, faults):
    def mail(sample: str) -> Callable[[], None]:
        event = load_event(sample)
        entry = {"Source": "aws.ses", "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}
        return lambda: router.put_events({"Entries": [entry]})

    outage = _run(router, faults, 20, {0: mail("ses-bounce.json"), 5: mail("ses-complaint.json")}, until=40)
    assert outage.refused >= 2
    assert router.dead_letters() == []
    assert _queue_depth("MailEventsQueue") == 0 and _queue_depth("MailEventsDeadLetterQueue") == 0
    assert len(_suppressions()) == 2


def test_customer_deleted_during_twenty_minutes_of_refused_writes_erases_after(router, faults):
    customer = new_id()
    register(customer, f"{customer}@example.com")
    event = copy.deepcopy(load_event("customer-deleted.json"))
    entry = {
        "Source": "commerce.customers",
        "DetailType": "CustomerDeleted",
        "Detail": json.dumps({**event["detail"], "customerId": customer}),
    }
    outage = _run(router, faults, 20, {0: lambda: router.put_events({"Entries": [entry]})}, until=40)
    assert outage.refused >= 1
    assert router.dead_letters() == []
    assert _queue_depth("CustomerEventsQueue") == 0 and _queue_depth("CustomerEventsDeadLetterQueue") == 0
    assert storage.load_customer(customer) is None
