"""The public code lookup (Query.referralOffer) through the API function's handler on moto."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from referrals import offers, storage
from referrals.config import parse_settings
from tests.conftest import load_event, new_id
from tests.integration.helpers import function, register

pytestmark = pytest.mark.usefixtures("aws_env")


def lookup(code: str, forwarded_for: str = "203.0.113.10, 130.176.1.1", identity: dict | None = None) -> dict:
    event = copy.deepcopy(load_event("referral-offer-query.json"))
    event["arguments"] = {"code": code}
    event["request"]["headers"]["x-forwarded-for"] = forwarded_for
    event["identity"] = identity
    return function("ApiFunction").invoke(event)


def referrer(name: str = "Olive Oyl") -> str:
    return register(new_id(), "o@example.com", name)["data"]["customer"]["referralCode"]


def test_the_sample_event_answers_for_an_unknown_code():
    answer = function("ApiFunction").invoke(load_event("referral-offer-query.json"))
    assert answer == {
        "data": {"valid": False, "code": None, "referrerFirstName": None, "siteName": None, "offerText": None}
    }


def test_a_good_code_says_what_the_friend_is_offered_and_nothing_else():
    code = referrer()
    answer = lookup(f"  {code.lower()} ")
    assert answer == {
        "data": {
            "valid": True,
            "code": code,
            "referrerFirstName": "Olive",
            "siteName": "Example Shop",
            "offerText": "20% off your first order",
        }
    }


def test_a_disabled_code_is_simply_not_valid():
    code = referrer()
    item = storage.CodeItem.get(code)
    item.update(actions=[storage.CodeItem.status.set("DISABLED")])
    assert lookup(code)["data"]["valid"] is False


def test_a_code_of_a_site_that_stopped_the_programme_is_not_valid():
    code = referrer()
    settings = parse_settings("{}")
    paused = replace(settings, sites={"default": replace(settings.sites["default"], enabled=False)})
    assert offers.lookup(paused, code, "192.0.2.1") == offers.ReferralOffer(valid=False)


def test_aws_calls_per_lookup(calls):
    code = referrer()
    calls.reset()
    lookup(code, "192.0.2.50, 130.176.1.1")
    # Its token, the code, and the programme's offerLookups (docs/programme.md)
    assert calls.count() == {"UpdateItem": 2, "GetItem": 1}
    # A code that cannot exist costs its token but no read, and is not counted
    calls.reset()
    lookup("not a code", "192.0.2.51, 130.176.1.1")
    assert calls.count() == {"UpdateItem": 1}
    # The same visitor again within the minute: its bucket is part-spent, so one more write
    calls.reset()
    lookup(code, "192.0.2.50, 130.176.1.1")
    assert calls.count() == {"UpdateItem": 3, "GetItem": 1}


def test_each_source_ip_has_its_own_bucket_and_forged_headers_share_it():
    code = referrer()
    for i in range(20):
        # Whatever a client puts on the left, AppSync's edge appends the real viewer and itself
        assert lookup(code, f"10.0.0.{i}, 198.51.100.7, 130.176.1.1")["data"]["valid"] is True
    refused = lookup(code, "10.9.9.9, 198.51.100.7, 130.176.1.1")
    assert refused["error"]["type"] == "RateLimited"
    assert refused["error"]["info"]["rateLimitingBucket"] == "REFERRAL_CODE_LOOKUP"
    # 60 lookups an hour come back one a minute (less the time the twenty lookups took)
    assert 50 <= refused["error"]["info"]["retryAfterSeconds"] <= 60
    # Another visitor is not affected
    assert lookup(code, "198.51.100.8, 130.176.1.1")["data"]["valid"] is True


def test_a_signed_in_caller_is_limited_by_the_address_appsync_saw():
    code = referrer()
    identity = {"sub": "s", "claims": {"sub": "s"}, "sourceIp": ["192.0.2.77"]}
    for _ in range(20):
        assert lookup(code, "1.1.1.1, 130.176.1.1", identity)["data"]["valid"] is True
    assert lookup(code, "2.2.2.2, 130.176.1.1", identity)["error"]["type"] == "RateLimited"
