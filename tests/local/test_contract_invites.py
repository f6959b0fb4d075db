"""The contract's sendReferralEmail, the outbox and the public code lookup, from outside over HTTP."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver import process, tokens
from tests.conftest import DOORS, OUTLET_SITE, Door, LocalApi, new_id

pytestmark = pytest.mark.http

SEND = "mutation Send($emailAddresses: [String!]!) { sendReferralEmail(emailAddresses: $emailAddresses) }"
REGISTER = "mutation R($input: RegistrationInput!) { register(input: $input) { customer { referralCode } } }"
OFFER = "query Offer($code: String!) { referralOffer(code: $code) { valid code referrerFirstName siteName offerText } }"
LOCAL_KEY = "local-api-key"


def unique(name: str) -> str:
    return f"{name}-{new_id('f')}@example.org"


def customer(api: LocalApi | Door, name: str = "Alice Smith", site: str | None = None) -> tuple[str, str]:
    """A registered customer: (token, referral code)."""
    sub = new_id()
    token = tokens.mint(sub, f"{sub}@example.com", site)
    status, body = api.graphql(REGISTER, {"input": {"fullName": name}}, token)
    assert status == 200, body
    return token, body["data"]["register"]["customer"]["referralCode"]


def send(api: LocalApi | Door, token: str, addresses: list[str]) -> dict:
    """Send, waiting out the site's SES pacing (14 a second, a 10-second burst, shared by every customer of the
    site): the cases run through both doors send about twice as fast as SES takes, and that pacing is not what
    they check. A customer's own bucket refills over a day, so its refusal (retry after hours) is returned."""
    for _ in range(20):
        status, body = api.graphql(SEND, {"emailAddresses": addresses}, token)
        assert status == 200
        info = (body.get("errors") or [{}])[0].get("errorInfo") or {}
        if info.get("rateLimitingBucket") != "REFERRAL_EMAIL" or info.get("retryAfterSeconds", 99) > 2:
            return body
        time.sleep(info["retryAfterSeconds"])
    return body


def with_key(api: LocalApi, query: str, variables: dict, key: str | None = LOCAL_KEY, **headers: str):
    sent = {"Content-Type": "application/json", **headers}
    if key is not None:
        sent["x-api-key"] = key
    return api.request("POST", "/graphql", {"query": query, "variables": variables}, sent)


def outbox(api: LocalApi | Door) -> list[dict]:
    status, mails = api.request("GET", "/_local/outbox")
    assert status == 200
    return mails


def test_each_friend_gets_one_mail_with_the_link(door):
    token, code = customer(door)
    bob, carol = unique("bob"), unique("carol")
    assert send(door, token, [bob, carol]) == {"data": {"sendReferralEmail": True}}
    mails = outbox(door)
    link = f"https://shop.example.com/referrals.list?applyCode={code}"
    for friend in (bob, carol):
        (mail,) = [m for m in mails if m["to"] == [friend]]
        assert set(mail) >= {"from", "to", "subject", "html", "text"}
        assert mail["from"] == "friends@shop.example.com"
        assert link in mail["html"] and link in mail["text"]
        assert mail["subject"] == "Alice sent you 20% off your first order at Example Shop"
        assert "You received this email because Alice" in mail["text"]


def test_the_outbox_is_oldest_first(door):
    token, _ = customer(door)
    first, second = unique("first"), unique("second")
    send(door, token, [first])
    send(door, token, [second])
    order = [m["to"][0] for m in outbox(door)]
    assert order.index(first) < order.index(second)


@pytest.mark.parametrize(
    "bad", ["x@example.org\r\nBcc: all@example.org", "x@example.org\n", "\rx@example.org", "x@exa\tmple.org", "nope"]
)
def test_an_invalid_address_sends_nothing_and_names_every_bad_address(door, bad):
    token, _ = customer(door)
    fine = unique("fine")
    body = send(door, token, [fine, bad, "also-bad@"])
    assert body["data"] == {"sendReferralEmail": None}
    (error,) = body["errors"]
    assert error["errorType"] == "InvalidEmailAddress" and error["path"] == ["sendReferralEmail"]
    assert [p["address"] for p in error["errorInfo"]["invalidAddresses"]] == [bad, "also-bad@"]
    assert json.dumps(bad) in error["message"] and '"also-bad@"' in error["message"]
    assert [m for m in outbox(door) if m["to"] == [fine]] == []
    # and no token was spent: the full bucket of 20 is still there
    assert send(door, token, [unique("a") for _ in range(10)])["data"]["sendReferralEmail"] is True
    assert send(door, token, [unique("b") for _ in range(10)])["data"]["sendReferralEmail"] is True


def test_more_than_ten_addresses_sends_nothing(door):
    token, _ = customer(door)
    friends = [unique("many") for _ in range(11)]
    body = send(door, token, friends)
    assert body["data"] == {"sendReferralEmail": None}
    assert body["errors"][0]["errorType"] == "TooManyEmailAddresses"
    assert body["errors"][0]["errorInfo"]["maxAddresses"] == 10
    assert not [m for m in outbox(door) if m["to"][0] in friends]


def test_a_caller_without_an_account_is_refused(door):
    friend = unique("orphan")
    body = send(door, tokens.mint(new_id(), "new@example.com"), [friend])
    assert body["data"] == {"sendReferralEmail": None}
    assert body["errors"][0]["errorType"] == "NoAccount"
    assert not [m for m in outbox(door) if m["to"] == [friend]]


def test_case_duplicates_count_once_and_an_empty_list_sends_nothing(door):
    token, _ = customer(door)
    friend = unique("twice")
    before = len(outbox(door))
    assert send(door, token, []) == {"data": {"sendReferralEmail": True}}
    assert len(outbox(door)) == before
    assert send(door, token, [friend, friend.upper()]) == {"data": {"sendReferralEmail": True}}
    assert len([m for m in outbox(door) if m["to"][0].lower() == friend.lower()]) == 1


def test_the_limit_answers_as_the_contract_says(door):
    token, _ = customer(door)
    assert send(door, token, [unique("a") for _ in range(10)])["data"]["sendReferralEmail"] is True
    assert send(door, token, [unique("b") for _ in range(10)])["data"]["sendReferralEmail"] is True
    body = send(door, token, [unique("c")])
    assert body["data"] == {"sendReferralEmail": None}
    (error,) = body["errors"]
    assert error["message"] == "Rate limited: Please try again later"
    assert error["errorType"] == "RateLimited"
    assert error["errorInfo"]["rateLimited"] is True
    assert error["errorInfo"]["rateLimitingBucket"] == "REFERRAL_EMAIL"
    assert isinstance(error["errorInfo"]["retryAfterSeconds"], int) and error["errorInfo"]["retryAfterSeconds"] > 0


def test_a_friend_invited_recently_is_reported_beside_true(door):
    first, _ = customer(door, "Ann A")
    second, _ = customer(door, "Ben B")
    friend = unique("popular")
    send(door, first, [friend])
    body = send(door, second, [friend])
    assert body["data"] == {"sendReferralEmail": True}
    assert body["errors"][0]["errorType"] == "InvitationsNotSent"
    assert body["errors"][0]["errorInfo"]["notSent"] == [{"address": friend, "reason": "RECENTLY_INVITED"}]
    assert len([m for m in outbox(door) if m["to"] == [friend]]) == 1


def test_names_are_escaped_in_the_mail(door):
    token, _ = customer(door, "<i>Zed</i> Quinn")
    friend = unique("escape")
    send(door, token, [friend])
    (mail,) = [m for m in outbox(door) if m["to"] == [friend]]
    assert "&lt;i&gt;Zed&lt;/i&gt;" in mail["html"] and "<i>Zed</i>" not in mail["html"]
    assert "<i>Zed</i> shops at" in mail["text"]


def test_a_visitor_with_the_api_key_looks_up_a_code(door):
    _, code = customer(door, "Olive Oyl")
    status, body = door.public(OFFER, {"code": f" {code.lower()} "})
    assert status == 200
    assert body == {
        "data": {
            "referralOffer": {
                "valid": True,
                "code": code,
                "referrerFirstName": "Olive",
                "siteName": "Example Shop",
                "offerText": "20% off your first order",
            }
        }
    }
    status, body = door.public(OFFER, {"code": "ZZZZ2345"})
    assert body["data"]["referralOffer"] == {
        "valid": False,
        "code": None,
        "referrerFirstName": None,
        "siteName": None,
        "offerText": None,
    }


def test_a_signed_in_customer_may_look_up_a_code_too(door):
    token, code = customer(door)
    status, body = door.graphql(OFFER, {"code": code}, token)
    assert status == 200 and body["data"]["referralOffer"]["valid"] is True


def test_the_api_key_opens_only_the_public_lookup(door):
    status, body = door.public("query { customer { referralCode } }", {})
    assert status == 200
    assert body["data"] == {"customer": None}
    assert body["errors"][0]["errorType"] == "Unauthorized"
    assert body["errors"][0]["message"] == "Not Authorized to access customer on type Query"
    friend = unique("keyed")
    status, body = door.public(SEND, {"emailAddresses": [friend]})
    assert body["data"] == {"sendReferralEmail": None} and body["errors"][0]["errorType"] == "Unauthorized"
    assert not [m for m in outbox(door) if m["to"] == [friend]]


@pytest.mark.parametrize("key", [None, "", "not-the-key"], ids=["missing", "empty", "wrong"])
def test_without_a_valid_token_or_key_the_lookup_is_refused(local_api, key):
    status, body = with_key(local_api, OFFER, {"code": "ABCD2345"}, key=key)
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException" and "data" not in body


# ---------- a server of its own: two sites, a small lookup limit, another API key ----------

CONFIG = {
    "sites": {
        "default": {},
        "outlet": OUTLET_SITE,
    },
    "codeLookups": {"capacity": 3, "refillPerHour": 1},
}


@pytest.fixture(scope="module")
def configured_api() -> Iterator[LocalApi]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config:
        json.dump(CONFIG, config)
    server = process.start({"REFERRALS_CONFIG": config.name, "REFERRALS_LOCAL_API_KEY": "another-key"})
    try:
        yield LocalApi(server.base_url)
    finally:
        server.stop()
        Path(config.name).unlink()


def test_each_site_sends_from_its_own_verified_sender_with_its_own_template(configured_api):
    token, code = customer(configured_api, "Greta G", site="outlet")
    friend = unique("freund")
    assert send(configured_api, token, [friend]) == {"data": {"sendReferralEmail": True}}
    (mail,) = [m for m in outbox(configured_api) if m["to"] == [friend]]
    assert mail["from"] == "freunde@outlet.example.de"
    assert mail["subject"] == "Greta schenkt dir 20 % Rabatt bei Outlet"
    assert f"https://outlet.example.de/referrals.list?applyCode={code}" in mail["text"]


UNISSUED_CODE = "WXYZ6789"


@pytest.mark.parametrize("door_name", DOORS)
def test_the_lookup_is_limited_per_source_ip_and_the_header_cannot_dodge_it(configured_api, door_name):
    door = Door(configured_api, door_name, api_key="another-key")
    # REFERRALS_LOCAL_API_KEY names the key (the code is no one's: make dev's seed issues ABCD2345)
    if door_name == "appsync":
        assert with_key(configured_api, OFFER, {"code": UNISSUED_CODE})[0] == 401
    # The bucket holds three lookups per address, shared by both doors (one store): whichever door ran first
    # used them, so at most three are answered here before the address is limited
    for _ in range(4):
        status, body = door.public(OFFER, {"code": UNISSUED_CODE})
        if "errors" in body:
            break
        assert status == 200 and body["data"]["referralOffer"]["valid"] is False
    else:
        pytest.fail("a fourth lookup from one address was answered")
    # Then it stays refused, whatever X-Forwarded-For the client writes
    for forged in (None, "198.51.100.99", "198.51.100.1, 198.51.100.2"):
        headers = {"X-Forwarded-For": forged} if forged else {}
        status, body = door.public(OFFER, {"code": UNISSUED_CODE}, **headers)
        assert status == 200 and body["data"] == {"referralOffer": None}
        (error,) = body["errors"]
        assert error["errorType"] == "RateLimited" and error["message"] == "Rate limited: Please try again later"
        assert error["errorInfo"]["rateLimitingBucket"] == "REFERRAL_CODE_LOOKUP"
        assert error["errorInfo"]["retryAfterSeconds"] > 0


def test_a_bounce_through_eventbridge_suppresses_the_address(door):
    # Given SES reports a hard bounce for a friend (as its configuration set's EventBridge destination would)
    friend = unique("bounced")
    detail = {
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": friend}]},
        "mail": {"tags": {"site": ["default"]}, "destination": [friend]},
    }
    entry = {"Source": "aws.ses", "DetailType": "Email Bounced", "Detail": json.dumps(detail)}
    status, answer = door.request("POST", "/_local/events", {"Entries": [entry]})
    assert status == 200 and answer["FailedEntryCount"] == 0
    # When a customer invites that friend
    token, _ = customer(door)
    body = send(door, token, [friend])
    # Then nothing is mailed and the reason is reported
    assert body["data"] == {"sendReferralEmail": True}
    assert body["errors"][0]["errorInfo"]["notSent"] == [{"address": friend, "reason": "SUPPRESSED"}]
    assert not [m for m in outbox(door) if m["to"] == [friend]]
