"""Order events, reconciliation runs and published reward events, for the reward tests on moto."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from devserver import consistency
from devserver.aws import published_queue
from devserver.stack import REGION
from referrals import storage
from tests.conftest import load_event, new_id
from tests.integration.helpers import function, register

_SAMPLES = {
    "OrderPlaced": "order-placed.json",
    "OrderCancelled": "order-cancelled.json",
    "OrderRefunded": "order-refunded.json",
}


def stamp(moment: datetime) -> str:
    """A time as EventBridge writes an envelope's `time`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_event(
    detail_type: str,
    order_id: str,
    customer_id: str,
    at: datetime,
    amount: str | None = None,
    currency: str = "GBP",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An EventBridge envelope built from the sample in events/, for this order, customer and time."""
    event = copy.deepcopy(load_event(_SAMPLES[detail_type]))
    event["id"] = event_id or str(uuid.uuid4())
    event["time"] = stamp(at)
    detail: dict[str, Any] = {"orderId": order_id, "customerId": customer_id}
    if detail_type == "OrderPlaced":
        detail["total"] = {"amount": amount or "45.00", "currency": currency}
    elif detail_type == "OrderRefunded":
        detail["refund"] = {"amount": amount or "10.00", "currency": currency}
    event["detail"] = detail
    return event


def placed(order_id: str, customer_id: str, at: datetime, amount: str = "45.00", currency: str = "GBP") -> dict:
    return order_event("OrderPlaced", order_id, customer_id, at, amount, currency)


def cancelled(order_id: str, customer_id: str, at: datetime) -> dict:
    return order_event("OrderCancelled", order_id, customer_id, at)


def refunded(order_id: str, customer_id: str, at: datetime, amount: str, currency: str = "GBP") -> dict:
    return order_event("OrderRefunded", order_id, customer_id, at, amount, currency)


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    """As EventBridge delivers to the order-events function: one event per invocation."""
    return function("OrderEventsFunction").invoke(event)


def reconcile(at: datetime, *, settle: bool = True) -> dict[str, Any]:
    """A scheduled run at `at`, with the input the ScheduleV2 gives (events/reconcile.json). Runs are an hour
    apart, so by the time one starts every earlier write has reached the due index, when reads may be stale
    (devserver/consistency.py); `settle=False` for a run that starts the moment after the last write."""
    if settle:
        consistency.settle()
    event = copy.deepcopy(load_event("reconcile.json"))
    event["time"] = at.astimezone(UTC).isoformat()
    return function("ReconcileFunction").invoke(event)


@dataclass
class Pair:
    referrer: str
    friend: str
    registered_at: datetime
    code: str


def referred_friend(referrer: str | None = None, code: str | None = None, email: str | None = None) -> Pair:
    """A referrer (new unless given) and a friend who registered with their code, through the API function."""
    if referrer is None:
        referrer = new_id("referrer")
        code = register(referrer, f"{referrer}@example.com")["data"]["customer"]["referralCode"]
    assert code is not None
    friend = new_id("friend")
    answer = register(friend, email or f"{friend}@example.com", "Fran Friend", code=code)["data"]
    assert answer["newCustomer"] is True
    return Pair(referrer, friend, registered_at(friend), code)


def registered_at(friend: str) -> datetime:
    return datetime.fromisoformat(referral(friend).created_at)


def referral(friend: str) -> storage.ReferralItem:
    return storage.ReferralItem.get(*storage.ReferralItem.key_for(friend), consistent_read=True)


@dataclass
class Bus:
    """What the service put on its bus, read from the local catch-all rule's queue (devserver/aws.py)."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    def events(self, detail_type: str | None = None, referee: str | None = None) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.get_queue_url(QueueName=published_queue("ReferralsEventBus"))["QueueUrl"]
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [
            e
            for e in self.seen
            if (detail_type is None or e["detail-type"] == detail_type)
            and (referee is None or e["detail"].get("refereeId") == referee)
        ]

    def rewards(self, referee: str | None = None) -> list[dict[str, Any]]:
        return self.events("ReferralRewardEarned", referee)


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)
