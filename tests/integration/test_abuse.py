"""Abuse of the programme, on moto through the functions' handlers: sign-up velocity per code and source,
disposable email domains, the review that holds a flagged referral's reward, and one invite per friend.

docs/rewards.md ("Review") states the rules; referrals/abuse.py and rewards.review_referral implement them.
"""

from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from devserver import outbox
from devserver.lambdas import LocalFunction
from devserver.samples import appsync_event
from devserver.stack import REGION, Stack
from referrals import storage
from referrals.config import load_settings
from tests.conftest import AWS_CALLS, load_event, new_id
from tests.integration.helpers import call_api, function
from tests.integration.rewards_helpers import Bus, cancelled, deliver, placed, reconcile, referral, registered_at

pytestmark = pytest.mark.usefixtures("aws_env")

LIMIT = load_settings().site(None).abuse.velocity_limit  # 5 by default
WINDOW_S = load_settings().site(None).abuse.velocity_window_minutes * 60
SOURCE = "203.0.113.10"  # the sample events' identity.sourceIp


def clear_of_window_edge(window_s: int = WINDOW_S, margin_s: float = 30) -> None:
    """Windows are fixed (referrals.abuse): a test that needs its sign-ups in one window starts clear of an edge."""
    left = window_s - time.time() % window_s
    if left < margin_s:
        time.sleep(left + 0.5)


def referrer_code(api: LocalFunction | None = None) -> tuple[str, str]:
    referrer = new_id("referrer")
    answer = sign_up(referrer, f"{referrer}@example.com", None, api=api, name="Rita Referrer")
    return referrer, answer["data"]["customer"]["referralCode"]


def sign_up(
    friend: str,
    email: str,
    code: str | None,
    ip: str = SOURCE,
    forwarded: str | None = None,
    api: LocalFunction | None = None,
    name: str = "Fran Friend",
) -> dict[str, Any]:
    """A registration as AppSync hands it to the API function, from `ip` (AppSync's identity.sourceIp)."""
    arguments = {"input": {"fullName": name, **({"referralCode": code} if code else {})}}
    event = appsync_event("register.json", friend, email, arguments=arguments)
    event["identity"]["sourceIp"] = [ip]
    if forwarded is not None:
        event["request"]["headers"]["x-forwarded-for"] = forwarded
    return (api or function("ApiFunction")).invoke(event)


def friend_of(code: str, ip: str = SOURCE, domain: str = "example.com", api: LocalFunction | None = None) -> str:
    friend = new_id("friend")
    assert sign_up(friend, f"{friend}@{domain}", code, ip, api=api)["data"]["newCustomer"] is True
    return friend


def view(referrer: str) -> list[tuple[str, str | None]]:
    """(status, reason) of each referral the referrer sees in Customer.referrals, oldest first."""
    event = copy.deepcopy(load_event("customer-referrals.json"))
    event["identity"]["sub"] = event["identity"]["claims"]["sub"] = referrer
    event["arguments"] = {"offset": 0, "limit": 50}
    event["source"] = None
    items = function("ApiFunction").invoke(event)["data"]["items"]
    return [(i["status"], i["reason"]) for i in reversed(items)]


def review(referee: str, decision: str, identity: dict | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("review-referral.json"))
    event["arguments"] = {"refereeId": referee, "decision": decision}
    if identity is not None:
        event["identity"] = identity
    return function("ReviewFunction").invoke(event)


def velocity_items() -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    items = dynamodb.scan(TableName=storage.VelocityItem.Meta.table_name)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("VELOCITY#")]


def held_friend(domain: str = "mailinator.com") -> tuple[str, str, datetime]:
    """A friend at a disposable domain whose order stood through its window: (referrer, friend, run time)."""
    referrer, code = referrer_code()
    friend = friend_of(code, domain=domain)
    at = registered_at(friend) + timedelta(hours=1)
    deliver(placed("o-1", friend, at))
    run = at + timedelta(days=15)
    assert reconcile(run)["held"] == 1
    return referrer, friend, run


# ---------- velocity ----------


def test_sign_ups_past_the_limit_from_one_source_are_flagged_at_one_transaction_more(calls):
    clear_of_window_edge()
    referrer, code = referrer_code()
    # Given LIMIT friends signed up with one code from one source, each in one transaction
    for n in range(LIMIT):
        calls.reset()
        friend_of(code)
        assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 1, "PutEvents": 1, "BatchWriteItem": 1}, n
    # When one more signs up from there
    calls.reset()
    late = friend_of(code)
    # Then the account is created and linked, but the referral is flagged VELOCITY: the first transaction was
    # refused by the counter's condition (nothing written) and the second wrote it flagged
    assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 2, "PutEvents": 1, "BatchWriteItem": 1}
    item = referral(late)
    assert (item.review, item.review_reason, item.status) == ("FLAGGED", "VELOCITY", "REGISTERED")
    assert view(referrer) == [("REGISTERED", None)] * LIMIT + [("REGISTERED", "VELOCITY")]
    # And every sign-up counts
    assert call_api("customer-query.json", referrer, f"{referrer}@example.com")["data"]["referralCount"] == LIMIT + 1
    # And the friend's ReferralRegistered says it is under review, so the offer system may hold the discount too
    (registered,) = Bus().events("ReferralRegistered", late)
    assert registered["detail"]["review"] == {"reason": "VELOCITY"}


def test_the_registration_transaction_puts_then_updates_the_count_and_the_counter():
    # The reasons' positions storage.create_account reads (the code's condition, count contention, the velocity
    # condition) follow the order pynamodb sends: condition checks first, then puts, then updates.
    _, code = referrer_code()
    seen: list[list[str]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        seen.append([next(iter(item)) + ":" + _table_of(item) for item in params["TransactItems"]])

    def _table_of(item: dict[str, Any]) -> str:
        return next(iter(item.values()))["TableName"]

    hook = "provide-client-params.dynamodb.TransactWriteItems"
    client = storage._client()
    client.meta.events.register(hook, capture)
    try:
        friend_of(code)
    finally:
        client.meta.events.unregister(hook, capture)
    env = Stack().environment()
    assert seen == [
        [
            f"ConditionCheck:{env['CODES_TABLE']}",  # index 0: the friend's code still active and the referrer's
            f"Put:{env['CUSTOMERS_TABLE']}",
            f"Put:{env['CODES_TABLE']}",
            f"Put:{env['REFERRALS_TABLE']}",  # the referral
            f"Put:{env['REFERRALS_TABLE']}",  # its ReferralRegistered event (outbox)
            f"Update:{env['COUNTS_TABLE']}",  # index 5: the count
            f"Update:{env['INVITES_TABLE']}",  # index 6: the velocity counter
            f"Update:{env['FIGURES_TABLE']}",  # the programme's figures (signUpsWithCode): the one item more
        ]
    ]


def test_another_source_is_counted_apart_and_a_forged_header_changes_nothing():
    clear_of_window_edge()
    referrer, code = referrer_code()
    for _ in range(LIMIT):
        friend_of(code)
    # A client writing another address into X-Forwarded-For is still the source AppSync saw
    forged = friend_of_with_header(code, forwarded="198.51.100.77")
    assert referral(forged).review_reason == "VELOCITY"
    # Another source is not flagged
    other = friend_of(code, ip="198.51.100.7")
    assert referral(other).review is None
    # An IPv6 subscriber is one source across its /64; the next /64 is another
    v6 = [friend_of(code, ip=f"2001:db8:1:2::{n:x}") for n in range(LIMIT + 1)]
    assert [referral(f).review for f in v6] == [None] * LIMIT + ["FLAGGED"]
    assert referral(friend_of(code, ip="2001:db8:1:3::1")).review is None
    assert [reason for _, reason in view(referrer)].count("VELOCITY") == 2


def friend_of_with_header(code: str, forwarded: str) -> str:
    friend = new_id("friend")
    assert sign_up(friend, f"{friend}@example.com", code, forwarded=forwarded)["data"]["newCustomer"] is True
    return friend


def test_the_counter_expires_by_ttl_and_holds_no_address():
    clear_of_window_edge()
    referrer, code = referrer_code()
    for _ in range(LIMIT + 2):
        friend_of(code)
    # One counter for this referrer's codes and source, at every sign-up (the flagged ones too)
    (item,) = [i for i in velocity_items() if f"#{referrer}#" in i["pk"]["S"]]
    assert int(item["n"]["N"]) == LIMIT + 2
    # Its TTL: one window after its own ends (never before the window it counts is over)
    now = time.time()
    window_end = (now // WINDOW_S + 1) * WINDOW_S
    assert int(item["expiresAt"]["N"]) == window_end + WINDOW_S
    # Its key holds a digest of the source, never the address
    assert SOURCE not in json.dumps(item)


def test_registrations_without_a_code_write_no_counter():
    for _ in range(LIMIT + 1):
        me = new_id()
        assert sign_up(me, f"{me}@example.com", None)["data"]["newCustomer"] is True
    assert velocity_items() == []


# ---------- disposable email domains ----------


@pytest.mark.parametrize("domain", ["mailinator.com", "Sub.YOPMAIL.fr", "guerrillamail.com"])
def test_a_friend_at_a_disposable_domain_is_linked_but_flagged_in_one_transaction(domain, calls):
    referrer, code = referrer_code()
    calls.reset()
    friend = friend_of(code, domain=domain)
    assert calls.count() == {"BatchGetItem": 1, "TransactWriteItems": 1, "PutEvents": 1, "BatchWriteItem": 1}
    item = referral(friend)
    assert (item.review, item.review_reason, item.eligible) == ("FLAGGED", "DISPOSABLE_EMAIL", True)
    assert view(referrer) == [("REGISTERED", "DISPOSABLE_EMAIL")]


@pytest.mark.parametrize("domain", ["example.com", "notyopmail.com", "mailinator.com.example.org"])
def test_other_domains_are_not_flagged(domain):
    _, code = referrer_code()
    assert referral(friend_of(code, domain=domain)).review is None


@pytest.fixture
def strict_api(monkeypatch) -> LocalFunction:
    """The API function of a site with its own limits: two sign-ups per source and window, one more domain."""
    config = {"sites": {"default": {"abuse": {"velocityLimit": 2, "disposableDomains": ["Throwaway.example"]}}}}
    monkeypatch.setenv("SITES_CONFIG", json.dumps(config))
    return LocalFunction(Stack().functions()["ApiFunction"])


def test_the_site_sets_the_limit_and_adds_domains(strict_api):
    clear_of_window_edge()
    _, code = referrer_code(strict_api)
    flags = [referral(friend_of(code, api=strict_api)).review_reason for _ in range(3)]
    assert flags == [None, None, "VELOCITY"]
    added = friend_of(code, ip="198.51.100.9", domain="mail.throwaway.example", api=strict_api)
    assert referral(added).review_reason == "DISPOSABLE_EMAIL"


def test_a_limit_of_zero_turns_velocity_off(monkeypatch, calls):
    monkeypatch.setenv("SITES_CONFIG", json.dumps({"sites": {"default": {"abuse": {"velocityLimit": 0}}}}))
    api = LocalFunction(Stack().functions()["ApiFunction"])
    _, code = referrer_code(api)
    friends = [friend_of(code, api=api) for _ in range(LIMIT + 2)]
    assert [referral(f).review for f in friends] == [None] * (LIMIT + 2)
    assert velocity_items() == []


# ---------- review: held, not rewarded, until released ----------


def test_a_flagged_referral_is_held_at_the_end_of_its_window_and_says_why():
    bus = Bus()
    referrer, code = referrer_code()
    friend = friend_of(code, domain="mailinator.com")
    at = registered_at(friend) + timedelta(hours=1)
    deliver(placed("o-1", friend, at))
    # While its order is in the window: PENDING, and the reason names the flag
    assert view(referrer) == [("PENDING", "DISPOSABLE_EMAIL")]
    # When the window closes
    report = reconcile(at + timedelta(days=15))
    # Then it is held, not earned: no reward, a ReferralRewardHeld for the reviewer
    assert (report["held"], report["earned"]) == (1, 0)
    assert bus.rewards() == []
    (held,) = bus.events("ReferralRewardHeld", friend)
    assert held["detail"]["orderId"] == "o-1" and held["detail"]["reason"] == "DISPOSABLE_EMAIL"
    assert held["detail"]["reward"] == {"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}
    assert view(referrer) == [("HELD", "DISPOSABLE_EMAIL")]
    item = referral(friend)
    assert (item.pending_order_id, item.due_at, item.earned_order_id) == ("o-1", None, None)
    # And nothing but a reviewer moves it: later runs, a late cancel, a second order change nothing
    assert reconcile(at + timedelta(days=400))["due"] == 0
    assert deliver(cancelled("o-1", friend, at + timedelta(days=2)))["outcome"] == "SETTLED"
    assert deliver(placed("o-2", friend, at + timedelta(minutes=1)))["outcome"] == "SETTLED"
    assert referral(friend).status == "HELD" and bus.rewards() == []


def test_releasing_a_held_reward_pays_it_once(calls):
    bus = Bus()
    referrer, friend, _ = held_friend()
    # When a reviewer releases it
    calls.reset()
    answer = review(friend, "RELEASE")
    # Then it earns now, in one read and one transaction (+ publishing the reward)
    assert calls.count() == {"Query": 1, "TransactWriteItems": 1, "PutEvents": 1, "BatchWriteItem": 1}
    data = answer["data"]
    assert (data["refereeId"], data["decision"], data["status"], data["reason"]) == (friend, "RELEASE", "EARNED", None)
    (reward,) = bus.rewards(friend)
    assert reward["detail"]["orderId"] == "o-1" and reward["detail"]["referrerId"] == referrer
    item = referral(friend)
    assert (item.status, item.earned_order_id, item.review) == ("EARNED", "o-1", "RELEASED")
    assert item.reviewed_by == "arn:aws:sts::123456789012:assumed-role/OfferSystemReviewer"  # the role, no session
    assert view(referrer) == [("EARNED", None)]
    # And the same decision again answers the same, writes nothing and pays nothing more
    calls.reset()
    assert review(friend, "RELEASE")["data"] == data
    assert calls.count() == {"Query": 1}
    # The other decision is refused: a decision is final
    refused = review(friend, "REJECT")
    assert refused["error"]["type"] == "AlreadyReviewed" and refused["error"]["info"] == {"review": "RELEASED"}
    assert reconcile(datetime.now(UTC) + timedelta(days=400))["earned"] == 0
    assert len(bus.rewards(friend)) == 1


def test_concurrent_releases_pay_once():
    bus = Bus()
    _, friend, _ = held_friend()
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: review(friend, "RELEASE"), range(6)))
    assert {a["data"]["status"] for a in answers} == {"EARNED"}
    assert len(bus.rewards(friend)) == 1


def test_a_release_racing_the_window_run_pays_once():
    bus = Bus()
    for _ in range(3):
        _, code = referrer_code()
        friend = friend_of(code, domain="yopmail.com")
        at = registered_at(friend) + timedelta(hours=1)
        deliver(placed("o-1", friend, at))
        # The reconciliation (which would hold it) and the release race each other
        with ThreadPoolExecutor(max_workers=2) as pool:
            run = pool.submit(reconcile, at + timedelta(days=15))
            released = pool.submit(review, friend, "RELEASE")
            run.result(), released.result()
        reconcile(at + timedelta(days=16))  # whatever the first run left due
        assert referral(friend).status == "EARNED"
        assert len(bus.rewards(friend)) == 1


def test_released_early_it_earns_as_any_other():
    bus = Bus()
    referrer, code = referrer_code()
    friend = friend_of(code, domain="mailinator.com")
    # Released before any order: it stays REGISTERED, and no longer shows the flag
    answer = review(friend, "RELEASE")["data"]
    assert (answer["status"], answer["reason"]) == ("REGISTERED", None)
    at = registered_at(friend) + timedelta(hours=1)
    deliver(placed("o-1", friend, at))
    assert view(referrer) == [("PENDING", None)]
    assert reconcile(at + timedelta(days=15))["earned"] == 1
    assert len(bus.rewards(friend)) == 1


@pytest.mark.parametrize("stage", ["REGISTERED", "PENDING", "HELD"])
def test_rejecting_ends_it_without_a_reward(stage):
    bus = Bus()
    if stage == "HELD":
        referrer, friend, run = held_friend()
    else:
        referrer, code = referrer_code()
        friend = friend_of(code, domain="mailinator.com")
        run = registered_at(friend) + timedelta(days=15)
        if stage == "PENDING":
            deliver(placed("o-1", friend, registered_at(friend) + timedelta(hours=1)))
    answer = review(friend, "REJECT")["data"]
    assert (answer["decision"], answer["status"], answer["reason"]) == ("REJECT", "REJECTED", "DISPOSABLE_EMAIL")
    assert view(referrer) == [("REJECTED", "DISPOSABLE_EMAIL")]
    # Nothing moves it afterwards: no run, no order, no release
    assert reconcile(run + timedelta(days=400))["due"] == 0
    assert deliver(placed("o-9", friend, run - timedelta(days=10)))["outcome"] == "SETTLED"
    assert review(friend, "RELEASE")["error"]["type"] == "AlreadyReviewed"
    assert review(friend, "REJECT")["data"]["status"] == "REJECTED"
    assert bus.rewards() == [] and referral(friend).due_at is None


def test_review_refuses_what_it_cannot_decide():
    _, code = referrer_code()
    plain = friend_of(code, ip="198.51.100.8")
    assert review(plain, "RELEASE")["error"]["type"] == "NotUnderReview"
    assert review(new_id("nobody"), "RELEASE")["error"]["type"] == "ReferralNotFound"
    bad = review("a\nb", "RELEASE")["error"]
    assert (bad["type"], bad["info"]["field"]) == ("ValidationError", "refereeId")
    assert review(plain, "MAYBE")["error"]["info"]["field"] == "decision"
    # A customer's token never reaches it, nor IAM credentials a Cognito identity pool handed out
    customer = appsync_event("register.json", plain, "p@example.com")["identity"]
    pool = {**load_event("review-referral.json")["identity"], "cognitoIdentityPoolId": "eu-west-1:pool"}
    for identity in (customer, pool, {}):
        AWS_CALLS.reset()
        refused = review(plain, "RELEASE", identity=identity)
        assert refused["error"]["type"] == "Unauthorized" and "data" not in refused
        assert AWS_CALLS.calls == []


def test_the_sample_event_answers_cleanly_on_an_empty_store():
    answer = function("ReviewFunction").invoke(load_event("review-referral.json"))
    assert answer["error"]["type"] == "ReferralNotFound" and "Traceback" not in json.dumps(answer)


# ---------- the same friend, invited by many referrers: one mail in the cool-down ----------


def invite(customer_id: str, addresses: list[str]) -> dict[str, Any]:
    return call_api(
        "send-referral-email.json", customer_id, f"{customer_id}@example.com", arguments={"emailAddresses": addresses}
    )


def test_a_friend_invited_by_three_referrers_is_mailed_once():
    referrers = [referrer_code()[0] for _ in range(3)]
    # The same mailbox, as three referrers write it
    spellings = ["Popular.Friend@gmail.com", "popularfriend+shop@gmail.com", "POPULAR.FRIEND@googlemail.com"]
    answers = [invite(r, [address]) for r, address in zip(referrers, spellings, strict=True)]
    # Then one mail, from the first; the others are told it was not sent, and why
    assert [m["to"] for m in outbox.sent()] == [["Popular.Friend@gmail.com"]]
    assert answers[0] == {"data": True}
    for answer, address in zip(answers[1:], spellings[1:], strict=True):
        assert answer["data"] is True
        assert answer["warnings"][0]["info"]["notSent"] == [{"address": address, "reason": "RECENTLY_INVITED"}]


def test_three_referrers_inviting_one_friend_at_once_send_one_mail():
    referrers = [referrer_code()[0] for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda r: invite(r, ["together@example.org"]), referrers))
    assert len(outbox.sent()) == 1
    skipped = [a for a in answers if a.get("warnings")]
    assert len(skipped) == 2
    assert all(a["warnings"][0]["info"]["notSent"][0]["reason"] == "RECENTLY_INVITED" for a in skipped)
