"""Reads as DynamoDB serves them (devserver/consistency.py): each drill here makes one eventually consistent
read, or one index query, come from a copy that no recent write has reached yet, and says what the service
must still do. Simulated time stands still (tick 0) and every read a function makes is answered by the lagging
replica (lagging 1), so a write arrives only when the drill says time passed (`settle`).

Each drill below names the read that had to become strongly consistent, or the condition that had to guard the
write (issue 11, part 6); the one index a customer reads (ByReferrerShard, for the list of referrals) is allowed to
lag, and its drill says by how much."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from devserver import consistency
from referrals import storage
from tests.conftest import load_event, new_id
from tests.integration.helpers import call_api, count_by_shard, customer, function, register
from tests.integration.rewards_helpers import Bus, cancelled, deliver, later, placed, reconcile, referral

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture(autouse=True)
def lagging(aws_env):
    consistency.enable(consistency.Staleness(window=1.0, lagging=1.0, seed="drill", tick=0.0))
    yield consistency
    consistency.disable()


def _referrer() -> tuple[str, str]:
    referrer = new_id("referrer")
    code = register(referrer, f"{referrer}@example.com", "Rita Referrer")["data"]["customer"]["referralCode"]
    consistency.settle()  # the referrer's account and code are old news by the time anyone else uses them
    return referrer, code


def _offer(code: str) -> dict:
    lookup = copy.deepcopy(load_event("referral-offer-query.json"))
    lookup["arguments"] = {"code": code}
    return function("ApiFunction").invoke(lookup)


def _erase(customer_id: str) -> dict:
    event = copy.deepcopy(load_event("erase-customer.json"))
    event["arguments"] = {"customerId": customer_id}
    return function("PrivacyFunction").invoke(event)


# ---------- what the service already does whatever the reads say ----------


def test_a_referral_the_due_index_has_not_caught_up_with_is_settled_by_the_next_run():
    bus = Bus()
    _, code = _referrer()
    friend = new_id("friend")
    assert register(friend, f"{friend}@example.com", "Fran Friend", code=code)["data"]["newCustomer"] is True
    consistency.settle()
    at = referral(friend).created_at
    placed_at = later(datetime.fromisoformat(at), hours=1)
    deliver(placed("o-1", friend, placed_at))
    # A run the moment after the order's write: the Due index still shows the referral as it was
    reconcile(later(placed_at, days=15), settle=False)
    assert bus.rewards(friend) == [] and referral(friend).status == "PENDING"
    # The next run, an hour later, finds it and pays once
    reconcile(later(placed_at, days=15, hours=1))
    reconcile(later(placed_at, days=15, hours=2))
    assert [e["detail"]["orderId"] for e in bus.rewards(friend)] == ["o-1"]


def test_a_stale_index_image_never_pays_a_referral_that_moved_since():
    bus = Bus()
    _, code = _referrer()
    friend = new_id("friend")
    register(friend, f"{friend}@example.com", "Fran Friend", code=code)
    consistency.settle()
    placed_at = later(datetime.fromisoformat(referral(friend).created_at), hours=1)
    deliver(placed("o-1", friend, placed_at))
    consistency.settle()  # the index shows it PENDING, due when its window closes
    deliver(cancelled("o-1", friend, later(placed_at, days=2)))  # a moment before the run: the index lags
    reconcile(later(placed_at, days=15), settle=False)
    assert bus.rewards(friend) == []
    assert referral(friend).status == "REVERSED"  # the version condition refused the earn; read again, it fell


def test_writes_and_their_conditions_see_what_the_read_missed():
    me = new_id()
    assert register(me, "me@example.com")["data"]["newCustomer"] is True
    again = register(me, "me@example.com")["data"]
    assert again["error"] == "ACCOUNT_EXISTS"  # the transaction's condition, whatever the read said
    with consistency.latest():
        assert storage.CustomerItem.count(me, consistent_read=True) == 1


# ---------- what it must do and does not yet (issue 11, part 6) ----------


def test_the_customer_query_right_after_register_shows_the_account():
    me = new_id()
    code = register(me, "me@example.com")["data"]["customer"]["referralCode"]
    answer = customer(me, "me@example.com")["data"]
    assert answer is not None and answer["referralCode"] == code


def test_the_count_includes_a_friend_who_signed_up_a_moment_ago():
    referrer, code = _referrer()
    friend = new_id("friend")
    assert register(friend, f"{friend}@example.com", "Fran Friend", code=code)["data"]["newCustomer"] is True
    assert customer(referrer, f"{referrer}@example.com")["data"]["referralCount"] == 1


def test_a_code_is_usable_the_moment_its_owner_has_it():
    referrer = new_id("referrer")
    code = register(referrer, f"{referrer}@example.com", "Rita Referrer")["data"]["customer"]["referralCode"]
    friend = new_id("friend")
    assert register(friend, f"{friend}@example.com", "Fran Friend", code=code)["data"]["newCustomer"] is True


@pytest.mark.parametrize("source", ["lagging replica", "code cache"])
def test_a_code_erased_a_moment_ago_is_refused_and_nothing_is_written(source):
    referrer, code = _referrer()
    first = new_id("friend")
    assert register(first, f"{first}@example.com", "Fran Friend", code=code)["data"]["newCustomer"] is True
    consistency.settle()
    assert "error" not in _erase(referrer)
    if source == "lagging replica":  # an environment that has not cached the code reads it
        storage.forget_code(code)
    # else: the environment that registered the first friend still holds the code it read (for 5 s)
    late = new_id("late")
    answer = register(late, "late@example.com", "Late Friend", code=code)["data"]
    assert answer["error"] == "INVALID_DATA"
    assert answer["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_DISABLED"]}]
    with consistency.latest():
        assert storage.CustomerItem.count(late, consistent_read=True) == 0
        # and no count item comes back for the erased referrer (erasure deleted them)
        assert count_by_shard(referrer) == {}


def test_account_exists_comes_first_even_a_moment_after_registering():
    me = new_id()
    assert register(me, "me@example.com")["data"]["newCustomer"] is True
    again = register(me, "me@example.com", code="NOSUCH99")["data"]
    assert again["error"] == "ACCOUNT_EXISTS"


def test_inviting_right_after_registering_works():
    me = new_id()
    register(me, "me@example.com")
    answer = call_api("send-referral-email.json", me, "me@example.com", arguments={"emailAddresses": ["a@example.org"]})
    assert answer == {"data": True}


def test_the_offer_of_a_code_created_a_moment_ago_is_valid():
    referrer = new_id("referrer")
    code = register(referrer, f"{referrer}@example.com", "Olive Referrer")["data"]["customer"]["referralCode"]
    assert _offer(code)["data"]["valid"] is True


def test_the_referrals_listed_catch_up_with_the_exact_total():
    # The list comes from the ByReferrerShard index (never consistent on DynamoDB), the total from the count (read
    # strongly): a friend who signed up a moment ago is counted at once and listed once the index has the write
    # (docs/stale-reads.md). The list never shows more than the total, and agrees once the index caught up.
    consistency.enable(consistency.Staleness(window=1.0, lagging=0.0, seed="index", tick=0.0))
    referrer, code = _referrer()
    friend = new_id("friend")
    assert register(friend, f"{friend}@example.com", "Fran Friend", code=code)["data"]["newCustomer"] is True
    arguments = {"offset": 0, "limit": 50}
    answer = call_api("customer-referrals.json", referrer, f"{referrer}@example.com", arguments=arguments)["data"]
    assert answer["total"] == 1
    assert len(answer["items"]) <= answer["total"]
    consistency.settle()
    answer = call_api("customer-referrals.json", referrer, f"{referrer}@example.com", arguments=arguments)["data"]
    assert [item["status"] for item in answer["items"]] == ["REGISTERED"] and answer["total"] == 1
