"""Faults at every AWS call of registration and of the customer query: a clean error or a retry that
succeeds, never half an account, and the same request again converges to the one right state."""

from __future__ import annotations

import pytest

from referrals import storage
from tests.conftest import new_id
from tests.faults import KINDS, LOST
from tests.integration.helpers import customer, register

pytestmark = pytest.mark.usefixtures("aws_env")

FLOWS = {"register": 1, "register with a code": 2, "customer": 1}  # AWS calls each makes


def _cases():
    for flow, calls in FLOWS.items():
        for call in range(1, calls + 1):
            for kind in KINDS:
                yield flow, call, kind


def _referrer() -> tuple[str, str]:
    referrer = new_id()
    return referrer, register(referrer, "ref@example.com")["data"]["customer"]["referralCode"]


def _count(referrer: str) -> int:
    return customer(referrer, "ref@example.com")["data"]["referralCount"]


def _run(flow: str, me: str, code: str) -> dict:
    if flow == "customer":
        return customer(me, "me@example.com")
    return register(me, "me@example.com", "Me Myself", code=code if flow == "register with a code" else None)


@pytest.mark.parametrize(("flow", "call", "kind"), list(_cases()))
def test_a_lasting_fault_answers_cleanly_and_writes_nothing(flow, call, kind, faults):
    referrer, code = _referrer()
    me = new_id()
    if flow == "customer":
        register(me, "me@example.com")
    # Given call N of the flow keeps failing
    faults.arm(call, kind)
    answer = _run(flow, me, code)
    faults.disarm()
    assert faults.injected >= 1
    # Then the client gets a clean, typed error and no detail
    if "error" in answer:
        assert answer["error"]["type"] == "ServiceBusy" and "Traceback" not in str(answer)
    # And nothing is half-written: no account without its code, no count without its link
    if flow != "customer":
        account = storage.load_registration_context(me, None)[0]
        assert account is False or answer.get("data", {}).get("newCustomer") is True
        # When the same request comes again, it converges to exactly one account and one count
        again = _run(flow, me, code)
        assert again["data"]["error"] in (None, "ACCOUNT_EXISTS")
        assert customer(me, "me@example.com")["data"] is not None
        assert _count(referrer) == (1 if flow == "register with a code" else 0)


@pytest.mark.parametrize(("flow", "call", "kind"), [c for c in _cases() if c[2] != "conflict"])
def test_a_passing_fault_is_retried_away(flow, call, kind, faults):
    _, code = _referrer()
    me = new_id()
    if flow == "customer":
        register(me, "me@example.com")
    faults.arm(call, kind, attempts=1)
    answer = _run(flow, me, code)
    assert faults.injected == 1
    assert "error" not in answer
    assert customer(me, "me@example.com")["data"] is not None


def test_a_transaction_conflict_is_retried_by_us(faults):
    referrer, code = _referrer()
    me = new_id()
    # TransactionCanceled(TransactionConflict), which botocore does not retry: our second and third tries conflict too
    faults.arm([2, 3, 4], "conflict")
    answer = register(me, "me@example.com", code=code)
    assert faults.injected == 3
    assert answer["data"]["newCustomer"] is True and _count(referrer) == 1


@pytest.mark.parametrize(("flow", "call"), [(f, c) for f, c, k in _cases() if k == KINDS[0] and f != "customer"])
def test_a_lost_answer_is_retried_and_answers_as_the_first_would_have(flow, call, faults):
    referrer, code = _referrer()
    me = new_id()
    # Given call N is applied by DynamoDB, and its answer lost once: botocore sends the same request again
    faults.arm(call, LOST, attempts=1)
    answer = _run(flow, me, code)
    assert faults.injected == 1
    # Then the retried transaction is recognised by its ClientRequestToken: a new customer, not ACCOUNT_EXISTS,
    # counted once
    assert "error" not in answer and answer["data"]["newCustomer"] is True, answer
    assert answer["data"]["error"] is None
    assert _count(referrer) == (1 if flow == "register with a code" else 0)
