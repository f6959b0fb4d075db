"""Registration and the customer query through the API function's handler, on moto."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import new_id
from tests.integration.helpers import call_api, customer, function, register

pytestmark = pytest.mark.usefixtures("aws_env")


def test_sample_events_invoke_the_handler():
    # Given the sample events sam local invoke would take
    # When the register sample and then the customer sample are invoked
    created = function("ApiFunction").invoke(__import__("tests.conftest").conftest.load_event("register.json"))
    seen = function("ApiFunction").invoke(__import__("tests.conftest").conftest.load_event("customer-query.json"))
    # Then the account exists and the query shows its code
    assert created["data"]["newCustomer"] is True
    assert seen["data"]["referralCode"] == created["data"]["customer"]["referralCode"]


def test_register_without_code_creates_account_with_code():
    me = new_id()
    answer = register(me, "alice@example.com")["data"]
    assert answer["error"] is None and answer["newCustomer"] is True
    code = answer["customer"]["referralCode"]
    assert len(code) == 8
    view = customer(me, "alice@example.com")["data"]
    assert view["referralCode"] == code
    assert view["referralCount"] == 0
    assert view["referralLink"] == f"https://shop.example.com/referrals.list?applyCode={code}"
    assert view["socialReferralMethods"][0]["type"] == "EMAIL"


def test_customer_is_null_without_account():
    assert customer(new_id(), "nobody@example.com") == {"data": None}


def test_friend_registers_with_code_and_count_rises():
    referrer = new_id()
    code = register(referrer, "ref@example.com")["data"]["customer"]["referralCode"]
    friend = register(new_id(), "friend@example.com", "Fran Friend", code=f"  {code.lower()} ")["data"]
    assert friend["newCustomer"] is True and friend["error"] is None
    assert customer(referrer, "ref@example.com")["data"]["referralCount"] == 1


def test_second_register_is_account_exists_and_changes_nothing():
    me = new_id()
    first = register(me, "a@example.com")["data"]["customer"]["referralCode"]
    again = register(me, "a@example.com")["data"]
    assert again == {"customer": None, "error": "ACCOUNT_EXISTS", "fieldErrors": [], "newCustomer": False}
    assert customer(me, "a@example.com")["data"]["referralCode"] == first


def test_account_exists_comes_before_a_bad_code():
    me = new_id()
    register(me, "a@example.com")
    assert register(me, "a@example.com", code="NOPE2345")["data"]["error"] == "ACCOUNT_EXISTS"
    assert register(me, "a@example.com", full_name="")["data"]["error"] == "ACCOUNT_EXISTS"


@pytest.mark.parametrize("code", ["ZZZZ2345", "0000", "x" * 60])
def test_unknown_code_is_invalid_data_and_writes_nothing(code):
    me = new_id()
    answer = register(me, "b@example.com", code=code)["data"]
    assert answer["error"] == "INVALID_DATA" and answer["customer"] is None and answer["newCustomer"] is False
    assert answer["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_NOT_FOUND"]}]
    assert customer(me, "b@example.com") == {"data": None}


def test_blank_code_means_no_code():
    answer = register(new_id(), "c@example.com", code="   ")["data"]
    assert answer["newCustomer"] is True


def test_code_of_another_site_is_refused(monkeypatch):
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    # A site that the default settings do not know is refused as a whole
    answer = register(new_id(), "f@example.com", code=code, site="nowhere")
    assert answer["error"]["type"] == "UnknownSite"


def test_forty_friends_at_once_count_exactly():
    referrer = new_id()
    code = register(referrer, "busy@example.com")["data"]["customer"]["referralCode"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: register(new_id(), f"f{i}@example.com", f"F {i}", code=code), range(40)))
    assert all(a["data"]["newCustomer"] for a in answers)
    assert customer(referrer, "busy@example.com")["data"]["referralCount"] == 40


def test_same_friend_retrying_eight_times_counts_once():
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    friend = new_id()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: register(friend, "f@example.com", code=code), range(8)))
    outcomes = sorted(str(a["data"]["error"]) for a in answers)
    assert outcomes == ["ACCOUNT_EXISTS"] * 7 + ["None"]
    assert customer(referrer, "r@example.com")["data"]["referralCount"] == 1


def test_calls_per_operation(calls):
    me = new_id()
    calls.reset()
    code = register(me, "m@example.com")["data"]["customer"]["referralCode"]
    assert calls.count() == {"TransactWriteItems": 1}
    calls.reset()
    register(new_id(), "n@example.com", code=code)
    # ReferralRegistered rides in the transaction (outbox), then is published and cleared (docs/rewards.md)
    assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 1, "PutEvents": 1, "BatchWriteItem": 1}
    calls.reset()
    customer(me, "m@example.com")
    assert calls.count() == {"BatchGetItem": 1}


def test_no_identity_is_refused():
    event = __import__("tests.integration.helpers").integration.helpers.appsync_event(
        "customer-query.json", "x", "x@e.com"
    )
    event["identity"] = None
    answer = function("ApiFunction").invoke(event)
    assert answer["error"]["type"] == "Unauthorized"


def test_unexpected_failure_hides_internals(monkeypatch):
    from referrals import storage

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret table name CustomersTable")

    monkeypatch.setattr(storage, "load_customer_view", explode)
    answer = customer(new_id(), "x@example.com")
    assert answer == {"error": {"type": "InternalFailure", "message": "An internal error occurred", "info": None}}


def test_register_arguments_never_name_another_customer():
    # register takes no customer id: the identity is the token's subject
    me = new_id()
    answer = call_api(
        "register.json", me, "me@example.com", arguments={"input": {"fullName": "Me", "customerId": "someone-else"}}
    )
    assert answer["data"]["newCustomer"] is True
    assert customer(me, "me@example.com")["data"] is not None
    assert customer("someone-else", "me@example.com") == {"data": None}
