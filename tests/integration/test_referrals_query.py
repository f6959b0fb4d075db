"""`Customer.referrals`: the referrer's friends, newest first, with where each reward stands and why."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from tests.conftest import load_event, new_id
from tests.integration.helpers import customer, function, register
from tests.integration.rewards_helpers import cancelled, deliver, placed, referred_friend

pytestmark = pytest.mark.usefixtures("aws_env")


def referrals(caller: str, offset: int = 0, limit: int = 20, source: dict | None = None) -> dict:
    """The nested field as AppSync invokes it: `source` is what the parent `customer` field returned."""
    event = copy.deepcopy(load_event("customer-referrals.json"))
    event["identity"]["sub"] = caller
    event["identity"]["claims"]["sub"] = caller
    event["arguments"] = {"offset": offset, "limit": limit}
    event["source"] = source
    return function("ApiFunction").invoke(event)


def test_a_referrers_friends_with_status_and_reason(calls):
    # Given three friends: one self-referral, one whose order is pending, one whose order was cancelled
    referrer = new_id("referrer")
    code = register(referrer, "pat.smith@gmail.com", "Pat Smith")["data"]["customer"]["referralCode"]
    self_referral = referred_friend(referrer, code, email="patsmith+2@gmail.com")
    pending = referred_friend(referrer, code)
    fallen = referred_friend(referrer, code)
    deliver(placed("o-1", pending.friend, pending.registered_at + timedelta(hours=1)))
    deliver(placed("o-1", fallen.friend, fallen.registered_at + timedelta(hours=1)))
    deliver(cancelled("o-1", fallen.friend, fallen.registered_at + timedelta(days=1)))
    parent = customer(referrer, "pat.smith@gmail.com")["data"]
    # When the referrer reads the first page of two, under the parent customer
    calls.reset()
    page = referrals(referrer, 0, 2, source=parent)["data"]
    # Then newest first, with a total and more to come, in one request (the parent knew the count)
    assert calls.count() == {"Query": 1}
    assert page["total"] == 3 and page["hasMore"] is True
    assert [(i["status"], i["reason"]) for i in page["items"]] == [("REVERSED", "ORDER_CANCELLED"), ("PENDING", None)]
    assert all(i["friendName"] == "Fran F." for i in page["items"])
    # And the last page holds the self-referral, which never earns and says why
    rest = referrals(referrer, 2, 2, source=parent)["data"]
    assert rest["hasMore"] is False
    assert [(i["status"], i["reason"]) for i in rest["items"]] == [("NOT_ELIGIBLE", "SELF_REFERRAL")]
    assert rest["items"][0]["createdAt"] == self_referral.registered_at.isoformat(timespec="milliseconds")


def test_the_caller_sees_only_their_own_referrals_whatever_the_parent_says():
    mine = referred_friend()
    theirs = referred_friend()
    forged_parent = {"customerId": theirs.referrer, "referralCount": 7}
    page = referrals(mine.referrer, source=forged_parent)["data"]
    # The token's subject decides; the parent's count is not trusted for another customer
    assert page["total"] == 1 and len(page["items"]) == 1


def test_without_a_parent_the_total_is_read(calls):
    pair = referred_friend()
    calls.reset()
    page = referrals(pair.referrer, source=None)["data"]
    assert page["total"] == 1 and page["items"][0]["status"] == "REGISTERED"
    assert calls.count() == {"BatchGetItem": 1, "Query": 1}


def test_no_referrals_reads_nothing_more(calls):
    loner = new_id()
    register(loner, "loner@example.com")
    parent = customer(loner, "loner@example.com")["data"]
    calls.reset()
    assert referrals(loner, source=parent)["data"] == {"items": [], "total": 0, "hasMore": False}
    assert calls.count() == {}


@pytest.mark.parametrize(
    ("offset", "limit", "field"), [(-1, 20, "offset"), (1001, 20, "offset"), (0, 0, "limit"), (0, 51, "limit")]
)
def test_paging_arguments_out_of_range_name_the_argument(offset, limit, field):
    answer = referrals(new_id(), offset, limit)
    assert answer["error"]["type"] == "ValidationError"
    assert answer["error"]["info"] == {"field": field, "reason": "OUT_OF_RANGE"}
