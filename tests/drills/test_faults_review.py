"""Faults at every AWS call of the abuse paths: a sign-up past the velocity limit (two transactions, the first
refused by the counter), the reconciliation holding a flagged reward, and a reviewer releasing it. After each:
a clean error or a retry that succeeds, nothing half-written, and the same request again converges to the one
right state: one account, one flagged link, one count, one counter step, and at most one reward."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from devserver.lambdas import FunctionError, LocalFunction
from devserver.samples import appsync_event
from devserver.stack import Stack
from referrals import storage
from tests.conftest import load_event, new_id
from tests.faults import KINDS
from tests.integration.helpers import count_by_shard
from tests.integration.rewards_helpers import Bus, deliver, placed, reconcile, referral, registered_at

pytestmark = pytest.mark.usefixtures("aws_env")

# A flagged sign-up's calls: BatchGetItem, TransactWriteItems (refused: the counter is at its limit),
# TransactWriteItems (flagged), PutEvents, BatchWriteItem.
SIGN_UP_CALLS = 5
# A release of a held reward: Query, TransactWriteItems, PutEvents, BatchWriteItem.
RELEASE_CALLS = 4


@pytest.fixture
def api(monkeypatch) -> LocalFunction:
    """The API function of a site that flags the second sign-up per code and source (so setup is one sign-up)."""
    monkeypatch.setenv("SITES_CONFIG", json.dumps({"sites": {"default": {"abuse": {"velocityLimit": 1}}}}))
    return LocalFunction(Stack().functions()["ApiFunction"])


def _sign_up(api: LocalFunction, me: str, code: str | None) -> dict:
    arguments = {"input": {"fullName": "Fran Friend", **({"referralCode": code} if code else {})}}
    return api.invoke(appsync_event("register.json", me, f"{me}@example.com", arguments=arguments))


def _count(referrer: str) -> int:
    return sum(count_by_shard(referrer).values())


def _counter(referrer: str) -> int:
    """The sign-up velocity counters of a referrer's codes (referrals.abuse keys them by referrer)."""
    items = [i for i in storage.VelocityItem.scan() if f"#{referrer}#" in i.pk]
    return sum(int(i.n or 0) for i in items)


@pytest.mark.parametrize(("call", "kind"), [(c, k) for c in range(1, SIGN_UP_CALLS + 1) for k in KINDS])
def test_a_fault_on_a_flagged_sign_up_converges_to_one_flagged_link(api, faults, call, kind):
    referrer = new_id("referrer")
    code = _sign_up(api, referrer, None)["data"]["customer"]["referralCode"]
    assert _sign_up(api, new_id("friend"), code)["data"]["newCustomer"] is True  # the limit: one
    me = new_id("friend")
    # Given call N of the next (flagged) sign-up keeps failing
    faults.arm(call, kind)
    answer = _sign_up(api, me, code)
    faults.disarm()
    assert faults.injected >= 1
    # Then a clean error or success, and never half: account, link, count and counter together or not at all
    if "error" in answer:
        assert answer["error"]["type"] == "ServiceBusy" and "Traceback" not in json.dumps(answer)
    exists = storage.load_registration_context(me, None)[0]
    assert exists is ("error" not in answer)
    assert _count(referrer) == _counter(referrer) == (2 if exists else 1)
    # When the same request comes again, it converges: one account, flagged, counted once
    again = _sign_up(api, me, code)
    assert again["data"]["error"] in (None, "ACCOUNT_EXISTS")
    assert (referral(me).review, referral(me).review_reason) == ("FLAGGED", "VELOCITY")
    assert _count(referrer) == _counter(referrer) == 2


def _held_friend() -> str:
    referrer = new_id("referrer")
    api = LocalFunction(Stack().functions()["ApiFunction"])
    code = _sign_up(api, referrer, None)["data"]["customer"]["referralCode"]
    friend = new_id("friend")
    event = appsync_event(
        "register.json",
        friend,
        f"{friend}@yopmail.com",
        arguments={"input": {"fullName": "Fran Friend", "referralCode": code}},
    )
    assert api.invoke(event)["data"]["newCustomer"] is True
    return friend


def _release(friend: str) -> dict:
    event = copy.deepcopy(load_event("review-referral.json"))
    event["arguments"] = {"refereeId": friend, "decision": "RELEASE"}
    return LocalFunction(Stack().functions()["ReviewFunction"]).invoke(event)


def _reward_keys(bus: Bus, friend: str) -> set[str]:
    # Delivery is at least once (a copy may be republished); consumers dedupe on the key, so count keys
    return {e["detail"]["idempotencyKey"] for e in bus.rewards(friend)}


@pytest.mark.parametrize(("call", "kind"), [(c, k) for c in range(1, RELEASE_CALLS + 1) for k in KINDS])
def test_a_fault_on_a_release_pays_once_in_the_end(faults, call, kind):
    bus = Bus()
    friend = _held_friend()
    at = registered_at(friend) + timedelta(hours=1)
    deliver(placed("o-1", friend, at))
    assert reconcile(at + timedelta(days=15))["held"] == 1
    # Given call N of the release keeps failing
    faults.arm(call, kind)
    answer = _release(friend)
    faults.disarm()
    assert faults.injected >= 1
    if "error" in answer:
        assert answer["error"]["type"] == "ServiceBusy" and referral(friend).status == "HELD"
    else:
        assert answer["data"]["status"] == "EARNED"
    # When released again and the next runs republish what was left unpublished
    assert _release(friend)["data"]["status"] == "EARNED"
    reconcile(at + timedelta(days=16))
    reconcile(at + timedelta(days=17))
    # Then the reward was paid once, for the order that stood
    assert _reward_keys(bus, friend) == {f"ReferralRewardEarned:{friend}"}
    assert {e["detail"]["orderId"] for e in bus.rewards(friend)} == {"o-1"}
    assert referral(friend).earned_order_id == "o-1"


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_while_holding_leaves_it_due_for_the_next_run(faults, kind):
    bus = Bus()
    friend = _held_friend()
    at = registered_at(friend) + timedelta(hours=1)
    deliver(placed("o-1", friend, at))
    # Given the hold's transaction keeps failing (every TransactWriteItems of the run)
    # (The run's first calls are its Query of each due shard: the hold comes after its shard's.)
    faults.arm(list(range(1, 12 + 2 * storage.DUE_SHARDS)), kind, operation="TransactWriteItems")
    try:
        reconcile(at + timedelta(days=15))
    except FunctionError as error:  # the run fails as it does for an earn: the scheduler retries it
        assert error.error_type == "Busy"
    faults.disarm()
    assert faults.injected >= 1 and referral(friend).status == "PENDING"
    # Then the next run holds it, and nothing was paid
    assert reconcile(at + timedelta(days=15, hours=1))["held"] == 1
    assert referral(friend).status == "HELD" and bus.rewards(friend) == []
