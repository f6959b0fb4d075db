"""Faults at every AWS call of erasure (the mutation and the CustomerDeleted event) and of export: a clean error
or a retry that succeeds, never half an erasure, and the same request or event again converges."""

from __future__ import annotations

import copy

import pytest

from devserver.lambdas import FunctionError
from referrals import privacy, storage
from tests.conftest import load_event, new_id
from tests.faults import KINDS, LOST
from tests.integration.helpers import customer, function, register
from tests.integration.rewards_helpers import referral

pytestmark = pytest.mark.usefixtures("aws_env")

CALLS = {"erase": 2, "event": 2, "export": 5}  # the AWS calls each makes (docs/privacy.md)


def _friend() -> tuple[str, str]:
    referrer = new_id("referrer")
    code = register(referrer, f"{referrer}@example.com")["data"]["customer"]["referralCode"]
    friend = new_id("friend")
    register(friend, f"{friend}@example.com", "Fran Friend", code=code)
    return referrer, friend


def _run(flow: str, customer_id: str) -> dict:
    if flow == "event":
        event = copy.deepcopy(load_event("customer-deleted.json"))
        event["detail"] = {"customerId": customer_id}
        try:
            return function("PrivacyFunction").invoke(event)
        except FunctionError as error:  # Lambda retries the event, then dead-letters it
            return {"error": {"type": error.error_type, "message": error.error_message}}
    event = copy.deepcopy(load_event("erase-customer.json" if flow == "erase" else "export-customer.json"))
    event["arguments"] = {"customerId": customer_id}
    return function("PrivacyFunction").invoke(event)


def _erased(friend: str) -> bool:
    """All of it or none of it: the account and the friend's name go together."""
    gone = storage.load_customer(friend) is None
    anonymised = referral(friend).friend_name == privacy.ERASED_FRIEND_NAME
    assert gone == anonymised, "half an erasure"
    return gone


def _cases(lasting: bool):
    for flow, calls in CALLS.items():
        for call in range(1, calls + 1):
            for kind in (*KINDS, LOST):
                if lasting or kind != "conflict":
                    yield flow, call, kind


@pytest.mark.parametrize(("flow", "call", "kind"), list(_cases(lasting=True)))
def test_a_lasting_fault_answers_cleanly_and_half_erases_nothing(flow, call, kind, faults):
    referrer, friend = _friend()
    # Given call N keeps failing
    faults.arm(call, kind)
    answer = _run(flow, friend)
    faults.disarm()
    assert faults.injected >= 1
    # Then a clean, typed error (the event raises, so Lambda retries it), no detail, and nothing half-done
    if "error" in answer:
        assert answer["error"]["type"] in {"ServiceBusy", "Busy"} and "Traceback" not in str(answer)
    was_erased = _erased(friend)
    assert was_erased is False or flow != "export"
    # And the same request again converges: erased once, the referrer's count untouched
    if flow != "export":
        again = _run(flow, friend)
        assert "error" not in again and _erased(friend)
    assert customer(referrer, f"{referrer}@example.com")["data"]["referralCount"] == 1


@pytest.mark.parametrize(("flow", "call", "kind"), list(_cases(lasting=False)))
def test_a_passing_fault_is_retried_away(flow, call, kind, faults):
    _, friend = _friend()
    faults.arm(call, kind, attempts=1)
    answer = _run(flow, friend)
    assert faults.injected == 1
    assert "error" not in answer
    assert _erased(friend) is (flow != "export")
