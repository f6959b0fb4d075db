"""The rewards part of the local contract, from outside: `python -m devserver` over HTTP, as a new user would
try it: order events in through `/_local/events`, the reconciliation invoked fifteen days on, the reward out
on `/_local/published` (../shared/CONTRACT.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from devserver import tokens
from tests.conftest import load_event, new_id

pytestmark = pytest.mark.http

REGISTER = """mutation Register($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error newCustomer }
}"""
REFERRALS = """query {
  customer {
    referralCount
    referrals(offset: 0, limit: 10) { items { status createdAt friendName reason } total hasMore }
  }
}"""


def _register(api, sub: str, name: str, code: str | None = None) -> str | None:
    variables = {"input": {"fullName": name, **({"referralCode": code} if code else {})}}
    status, body = api.graphql(REGISTER, variables, tokens.mint(sub, f"{sub}@example.com"))
    assert status == 200 and body["data"]["register"]["newCustomer"] is True, body
    return body["data"]["register"]["customer"]["referralCode"]


def _pair(api) -> tuple[str, str]:
    referrer, friend = new_id("alice"), new_id("bob")
    code = _register(api, referrer, "Alice Smith")
    _register(api, friend, "Bob Jones", code)
    return referrer, friend


def _entry(detail_type: str, detail: dict, at: datetime | None = None) -> dict:
    entry = {"Source": "commerce.orders", "DetailType": detail_type, "Detail": json.dumps(detail)}
    if at is not None:
        entry["Time"] = at.isoformat()
    return entry


def _put(api, *entries: dict) -> dict:
    status, body = api.request("POST", "/_local/events", {"Entries": list(entries)})
    assert status == 200, body
    return body


def _run(api, at: datetime) -> dict:
    status, body = api.request("POST", "/_local/invoke/ReconcileFunction", {"time": at.isoformat()})
    assert status == 200, body
    return body


def _published(api, detail_type: str, referee: str) -> list[dict]:
    status, events = api.request("GET", "/_local/published")
    assert status == 200
    return [e for e in events if e["DetailType"] == detail_type and e["Detail"].get("refereeId") == referee]


def test_functions_list_the_order_rule_and_the_hourly_schedule(local_api):
    status, functions = local_api.request("GET", "/_local/functions")
    assert status == 200
    by_id = {f["logicalId"]: f["events"] for f in functions}
    (rule,) = by_id["OrderEventsFunction"]
    assert rule["type"] == "EventBridgeRule"
    assert rule["pattern"] == {
        "source": ["commerce.orders"],
        "detail-type": ["OrderPlaced", "OrderCancelled", "OrderRefunded"],
    }
    (schedule,) = by_id["ReconcileFunction"]
    assert schedule == {"type": "ScheduleV2", "expression": "rate(1 hour)"}


def test_an_order_that_stands_fifteen_days_earns_one_reward(door):
    referrer, friend = _pair(door)
    now = datetime.now(UTC)
    order = {"orderId": new_id("order"), "customerId": friend, "total": {"amount": "45.00", "currency": "GBP"}}
    # When the order is placed (delivered twice, as at-least-once delivery may) and a refund of 10.00 follows
    answer = _put(door, _entry("OrderPlaced", order, now), _entry("OrderPlaced", order, now))
    assert answer["FailedEntryCount"] == 0 and all("EventId" in e for e in answer["Entries"])
    refund = {"orderId": order["orderId"], "customerId": friend, "refund": {"amount": "10.00", "currency": "GBP"}}
    _put(door, _entry("OrderRefunded", refund, now + timedelta(days=2)))
    # And the reconciliation runs fifteen days later (twice: a run is safe to repeat)
    _run(door, now + timedelta(days=15))
    _run(door, now + timedelta(days=15))
    # Then exactly one reward event, as the contract shapes it
    (earned,) = _published(door, "ReferralRewardEarned", friend)
    assert earned["Source"] == "referrals"
    assert earned["Detail"]["referrerId"] == referrer and earned["Detail"]["orderId"] == order["orderId"]
    assert earned["Detail"]["reward"] == {"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}
    assert earned["Time"].startswith((now + timedelta(days=15)).strftime("%Y-%m-%dT%H:%M"))
    # And the friend's discount went out when they registered
    (registered,) = _published(door, "ReferralRegistered", friend)
    assert registered["Detail"]["discount"] == {"type": "PERCENTAGE", "percent": 20}
    # And the referrer sees it, with the friend's name masked
    _, body = door.graphql(REFERRALS, token=tokens.mint(referrer, f"{referrer}@example.com"))
    page = body["data"]["customer"]["referrals"]
    assert page["total"] == 1 and page["hasMore"] is False
    assert page["items"][0]["status"] == "EARNED" and page["items"][0]["friendName"] == "Bob J."


def test_a_cancel_delivered_before_its_order_means_no_reward(door):
    referrer, friend = _pair(door)
    now = datetime.now(UTC)
    order_id = new_id("order")
    placed = {"orderId": order_id, "customerId": friend, "total": {"amount": "45.00", "currency": "GBP"}}
    _put(door, _entry("OrderCancelled", {"orderId": order_id, "customerId": friend}, now + timedelta(days=1)))
    _put(door, _entry("OrderPlaced", placed, now))
    _run(door, now + timedelta(days=15))
    assert _published(door, "ReferralRewardEarned", friend) == []
    _, body = door.graphql(REFERRALS, token=tokens.mint(referrer, f"{referrer}@example.com"))
    (item,) = body["data"]["customer"]["referrals"]["items"]
    assert (item["status"], item["reason"]) == ("REVERSED", "ORDER_CANCELLED")


def test_another_currency_never_qualifies(door):
    referrer, friend = _pair(door)
    now = datetime.now(UTC)
    order = {"orderId": new_id("order"), "customerId": friend, "total": {"amount": "99.00", "currency": "EUR"}}
    _put(door, _entry("OrderPlaced", order, now))
    _run(door, now + timedelta(days=15))
    assert _published(door, "ReferralRewardEarned", friend) == []
    _, body = door.graphql(REFERRALS, token=tokens.mint(referrer, f"{referrer}@example.com"))
    (item,) = body["data"]["customer"]["referrals"]["items"]
    assert (item["status"], item["reason"]) == ("REGISTERED", "ORDER_CURRENCY_NOT_ACCEPTED")


def test_malformed_entries_fail_alone(local_api):
    _, friend = _pair(local_api)
    now = datetime.now(UTC)
    good = {"orderId": new_id("order"), "customerId": friend, "total": {"amount": "45.00", "currency": "GBP"}}
    floaty = {"orderId": new_id("order"), "customerId": friend, "total": {"amount": 45.0, "currency": "GBP"}}
    answer = _put(
        local_api,
        {"Source": "commerce.orders", "DetailType": "OrderPlaced", "Detail": "{not json"},
        {"DetailType": "OrderPlaced", "Detail": json.dumps(good)},
        _entry("OrderPlaced", floaty, now),  # accepted by EventBridge, refused by the function: dead-lettered
        _entry("OrderPlaced", good, now),
        {**_entry("OrderPlaced", good, now), "Time": "not a time"},
    )
    # Then PutEvents counts the three it refuses, and the good order went through regardless
    assert answer["FailedEntryCount"] == 3
    codes = [e.get("ErrorCode") for e in answer["Entries"]]
    assert codes == ["MalformedDetail", "InvalidArgument", None, None, "InvalidArgument"]
    (qualified,) = _published(local_api, "ReferralQualified", friend)
    assert qualified["Detail"]["orderId"] == good["orderId"]
    status, dead = local_api.request("GET", "/_local/dead-letters")
    assert status == 200
    (kept,) = [d for d in dead if d["body"].get("detail", {}).get("orderId") == floaty["orderId"]]
    assert kept["queue"] == "OrderEventsDeadLetterQueue" and kept["attributes"]["Reason"] == "MALFORMED"


def test_events_no_rule_matches_are_accepted_and_go_nowhere(local_api):
    answer = _put(local_api, {"Source": "commerce.shipping", "DetailType": "Shipped", "Detail": "{}"})
    assert answer["FailedEntryCount"] == 0 and "EventId" in answer["Entries"][0]
    status, _ = local_api.request("POST", "/_local/events", {"Entries": []})
    assert status == 400


def test_the_sample_batch_is_accepted(local_api):
    body = load_event("put-order-events.json")
    answer = _put(local_api, *body["Entries"])
    assert answer == {"FailedEntryCount": 0, "Entries": [{"EventId": e["EventId"]} for e in answer["Entries"]]}


def test_the_events_time_is_now_for_what_it_triggers(local_api):
    # An order stamped a day before the friend registered (another system's clock): only how long after
    # registering an order may come is bounded, and its window runs from its own time
    _, friend = _pair(local_api)
    placed_at = datetime.now(UTC) - timedelta(days=1)
    order = {"orderId": new_id("order"), "customerId": friend, "total": {"amount": "30.00", "currency": "GBP"}}
    _put(local_api, _entry("OrderPlaced", order, placed_at))
    _run(local_api, placed_at + timedelta(days=14) - timedelta(minutes=1))
    assert _published(local_api, "ReferralRewardEarned", friend) == []
    _run(local_api, placed_at + timedelta(days=14, minutes=1))
    assert len(_published(local_api, "ReferralRewardEarned", friend)) == 1
