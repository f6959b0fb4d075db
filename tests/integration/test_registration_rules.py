"""Registration rules that need stored state: self-referral, sites, disabled codes, bad input."""

from __future__ import annotations

import json

import pytest

from devserver.lambdas import LocalFunction
from devserver.stack import Stack
from referrals import storage
from tests.conftest import new_id
from tests.integration.helpers import appsync_event, customer, register

pytestmark = pytest.mark.usefixtures("aws_env")

TWO_SITES = {
    "sites": {
        "default": {},
        "beauty": {"domain": "beauty.example.com", "sender": "friends@beauty.example.com", "name": "Beauty"},
        "closed": {"domain": "closed.example.com", "sender": "x@closed.example.com", "enabled": False},
    }
}


@pytest.fixture
def multi_site_api(monkeypatch):
    monkeypatch.setenv("SITES_CONFIG", json.dumps(TWO_SITES))
    function = LocalFunction(Stack().functions()["ApiFunction"])

    def call(sample, customer_id, email, site, arguments=None):
        return function.invoke(appsync_event(sample, customer_id, email, site=site, arguments=arguments))

    return call


def _referral(referee_id: str) -> storage.ReferralItem:
    return storage.ReferralItem.get(*storage.ReferralItem.key_for(referee_id))


def test_self_referral_is_linked_but_not_eligible():
    referrer = new_id()
    code = register(referrer, "John.Smith@gmail.com")["data"]["customer"]["referralCode"]
    friend = new_id()
    # Given the same mailbox written another way (dots, +tag, googlemail.com)
    answer = register(friend, "johnsmith+promo@googlemail.com", "John Again", code=code)["data"]
    # Then the account is created and linked, and the count rises...
    assert answer["newCustomer"] is True
    assert customer(referrer, "John.Smith@gmail.com")["data"]["referralCount"] == 1
    # ...but the link can never earn, and says why
    link = _referral(friend)
    assert link.referrer_id == referrer and link.eligible is False and link.ineligible_reason == "SELF_REFERRAL"


def test_referral_records_the_link_with_a_masked_name():
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    friend = new_id()
    register(friend, "f@example.com", "Frances Quinn", code=code)
    link = _referral(friend)
    assert (link.referrer_id, link.status, link.eligible, link.friend_name) == (
        referrer,
        "REGISTERED",
        True,
        "Frances Q.",
    )


def test_disabled_code_is_refused_with_reason():
    referrer = new_id()
    code = register(referrer, "r@example.com")["data"]["customer"]["referralCode"]
    item = storage.CodeItem.get(code)
    item.update(actions=[storage.CodeItem.status.set("DISABLED")])
    friend = new_id()
    answer = register(friend, "f@example.com", code=code)["data"]
    assert answer["error"] == "INVALID_DATA"
    assert answer["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_DISABLED"]}]
    assert customer(friend, "f@example.com") == {"data": None}


def test_code_of_another_site_and_closed_programme(multi_site_api):
    referrer = new_id()
    created = multi_site_api("register.json", referrer, "r@example.com", "beauty", {"input": {"fullName": "Rae"}})
    code = created["data"]["customer"]["referralCode"]
    assert created["data"]["customer"]["referralLink"].startswith("https://beauty.example.com/")
    # A friend on the default site cannot use a beauty code
    friend = new_id()
    other = multi_site_api(
        "register.json", friend, "f@example.com", "default", {"input": {"fullName": "F", "referralCode": code}}
    )
    assert other["data"]["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_OTHER_SITE"]}]
    # The referrer's account is not visible from another site
    assert multi_site_api("customer-query.json", referrer, "r@example.com", "default")["data"] is None
    # A site whose programme is off takes accounts but no codes
    closed_owner = new_id()
    closed_code = multi_site_api(
        "register.json", closed_owner, "c@example.com", "closed", {"input": {"fullName": "C"}}
    )["data"]["customer"]["referralCode"]
    refused = multi_site_api(
        "register.json", new_id(), "d@example.com", "closed", {"input": {"fullName": "D", "referralCode": closed_code}}
    )
    assert refused["data"]["fieldErrors"][0]["validators"] == ["REFERRAL_PROGRAMME_DISABLED"]


@pytest.mark.parametrize(
    ("full_name", "validator"),
    [
        ("", "REQUIRED"),
        ("   ", "REQUIRED"),
        ("x" * 201, "MAX_LENGTH"),
        ("Eve\r\nBcc: x", "INVALID_CHARACTERS"),
        ("A\x00B", "INVALID_CHARACTERS"),
    ],
)
def test_bad_names_are_invalid_data_and_write_nothing(full_name, validator, calls):
    me = new_id()
    calls.reset()
    answer = register(me, "e@example.com", full_name)["data"]
    assert answer["error"] == "INVALID_DATA"
    assert {"fieldName": "fullName", "validators": [validator]} in answer["fieldErrors"]
    assert "TransactWriteItems" not in calls.count()
    assert customer(me, "e@example.com") == {"data": None}


def test_email_argument_must_be_the_signed_in_one():
    me = new_id()
    args = {"input": {"fullName": "Me", "email": "someone.else@example.com"}}
    from tests.integration.helpers import call_api

    answer = call_api("register.json", me, "me@example.com", arguments=args)["data"]
    assert answer["fieldErrors"] == [{"fieldName": "email", "validators": ["MUST_MATCH_SIGNED_IN_EMAIL"]}]
    same = call_api(
        "register.json", me, "me@example.com", arguments={"input": {"fullName": "Me", "email": "ME@example.com"}}
    )
    assert same["data"]["newCustomer"] is True


def test_token_without_email_cannot_register():
    answer = register(new_id(), "", "No Mail")["data"]
    assert answer["fieldErrors"] == [{"fieldName": "email", "validators": ["REQUIRED_IN_TOKEN"]}]


def test_code_collision_retries_with_a_fresh_code(monkeypatch):
    taken = register(new_id(), "t@example.com")["data"]["customer"]["referralCode"]
    fresh = iter([taken, taken, "ABCD2345"])
    monkeypatch.setattr("referrals.codes.new_code", lambda: next(fresh))
    answer = register(new_id(), "u@example.com")["data"]
    assert answer["customer"]["referralCode"] == "ABCD2345"
