"""Cross-site referrals: sites of one group whose switches are on take each other's codes (docs/configuration.md)."""

from __future__ import annotations

import json

import pytest

from devserver.lambdas import LocalFunction
from devserver.stack import Stack
from referrals import storage
from tests.conftest import new_id
from tests.integration.helpers import appsync_event

pytestmark = pytest.mark.usefixtures("aws_env")

GERMAN = {
    "domain": "shop.example.de",
    "sender": "freunde@shop.example.de",
    "currency": "EUR",
    "group": "example",
    "crossSiteReferrals": True,
}
GROUPED = {
    "sites": {
        "default": {"group": "example", "crossSiteReferrals": True},
        "de": GERMAN,
        # In the group, but with its switch off
        "fr": {"domain": "shop.example.fr", "sender": "amis@shop.example.fr", "currency": "EUR", "group": "example"},
        # In no group
        "beauty": {"domain": "beauty.example.com", "sender": "friends@beauty.example.com"},
    }
}
CUSTOMER_FIELDS = ["referralCode", "referralCount", "referralCounts"]


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("SITES_CONFIG", json.dumps(GROUPED))
    function = LocalFunction(Stack().functions()["ApiFunction"])

    def call(sample: str, customer_id: str, site: str, arguments: dict | None = None) -> dict:
        email = f"{customer_id}@example.com"
        return function.invoke(appsync_event(sample, customer_id, email, site=site, arguments=arguments))

    return call


def _register(api, customer_id: str, site: str, code: str | None = None) -> dict:
    arguments = {"input": {"fullName": "Fran Friend", **({"referralCode": code} if code else {})}}
    return api("register.json", customer_id, site, arguments)["data"]


def _counts(api, customer_id: str, site: str) -> tuple[int, list[dict]]:
    seen = api("customer-query.json", customer_id, site)["data"]
    return seen["referralCount"], seen["referralCounts"]


def test_a_friend_on_another_site_of_the_group_is_linked_and_counted_on_their_site(api):
    referrer = new_id()
    code = _register(api, referrer, "default")["customer"]["referralCode"]
    friend = new_id()
    answer = _register(api, friend, "de", code)
    assert answer["error"] is None and answer["newCustomer"] is True
    _register(api, new_id(), "default", code)
    # One per site of the group, by siteKey, each counting the friends who signed up there; the total their sum
    assert _counts(api, referrer, "default") == (
        2,
        [{"count": 1, "siteKey": "de"}, {"count": 1, "siteKey": "default"}, {"count": 0, "siteKey": "fr"}],
    )
    link = storage.ReferralItem.get(*storage.ReferralItem.key_for(friend))
    assert (link.site, link.referrer_site, link.referrer_id) == ("de", "default", referrer)


@pytest.mark.parametrize("friend_site", ["fr", "beauty"], ids=["switch-off", "no-group"])
def test_a_code_of_a_site_not_open_to_the_friends_site_is_refused_and_nothing_is_written(api, friend_site):
    referrer = new_id()
    code = _register(api, referrer, "default")["customer"]["referralCode"]
    friend = new_id()
    answer = _register(api, friend, friend_site, code)
    assert answer["error"] == "INVALID_DATA"
    assert answer["fieldErrors"] == [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_OTHER_SITE"]}]
    assert storage.load_customer(friend) is None
    assert _counts(api, referrer, "default")[0] == 0


def test_the_switch_must_be_on_at_both_ends(api):
    # A code of fr (switch off) is refused on default (switch on)
    referrer = new_id()
    code = _register(api, referrer, "fr")["customer"]["referralCode"]
    answer = _register(api, new_id(), "default", code)
    assert answer["fieldErrors"][0]["validators"] == ["REFERRAL_CODE_OTHER_SITE"]


def test_a_customer_in_no_group_sees_one_count_for_their_own_site(api):
    me = new_id()
    code = _register(api, me, "beauty")["customer"]["referralCode"]
    _register(api, new_id(), "beauty", code)
    assert _counts(api, me, "beauty") == (1, [{"count": 1, "siteKey": "beauty"}])


def test_registration_answers_the_group_with_zeros(api):
    answer = _register(api, new_id(), "de")
    assert answer["customer"]["referralCounts"] == [
        {"count": 0, "siteKey": "de"},
        {"count": 0, "siteKey": "default"},
        {"count": 0, "siteKey": "fr"},
    ]


def test_the_friends_order_follows_the_friends_site_and_the_credit_the_referrers(api):
    import copy

    from devserver import consistency
    from tests.conftest import load_event
    from tests.integration.rewards_helpers import Bus, later, placed, registered_at

    referrer = new_id()
    code = _register(api, referrer, "default")["customer"]["referralCode"]
    friend = new_id()
    _register(api, friend, "de", code)
    # Fresh functions, so they read this test's sites
    orders = LocalFunction(Stack().functions()["OrderEventsFunction"])
    start = registered_at(friend)
    # An order in pounds does not qualify on de (EUR); 35 EUR does, by de's minimum of 30 EUR
    orders.invoke(placed("o-gbp", friend, later(start, hours=1), "45.00", "GBP"))
    orders.invoke(placed("o-eur", friend, later(start, hours=2), "35.00", "EUR"))
    assert storage.ReferralItem.get(*storage.ReferralItem.key_for(friend)).pending_order_id == "o-eur"
    consistency.settle()
    run = copy.deepcopy(load_event("reconcile.json"))
    run["time"] = later(start, days=15).isoformat()
    LocalFunction(Stack().functions()["ReconcileFunction"]).invoke(run)
    rewards = Bus().rewards(friend)
    assert [r["detail"]["reward"] for r in rewards] == [{"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}]
