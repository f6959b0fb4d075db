"""Abuse of the programme from outside, over HTTP (`python -m devserver`): sign-ups past the velocity limit and
at disposable domains are flagged and show why, their rewards are held at the end of the window, and a server
signing with IAM (locally `x-local-iam`, docs/local.md) releases one (docs/rewards.md, "Review")."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from devserver import iam, tokens
from referrals.config import load_settings
from tests.conftest import new_id

pytestmark = pytest.mark.http

RULES = load_settings().site(None).abuse
REGISTER = """mutation Register($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error newCustomer }
}"""
REFERRALS = "{ customer { referralCount referrals(limit: 50) { items { status friendName reason } total } } }"
REVIEW = """mutation Review($id: ID!, $decision: ReviewDecision!) {
  reviewReferral(refereeId: $id, decision: $decision) { refereeId decision status reason reviewedAt }
}"""


def _register(api, sub: str, email: str, name: str, code: str | None = None) -> str:
    variables = {"input": {"fullName": name, **({"referralCode": code} if code else {})}}
    status, body = api.graphql(REGISTER, variables, tokens.mint(sub, email))
    assert status == 200 and body["data"]["register"]["newCustomer"] is True, body
    return body["data"]["register"]["customer"]["referralCode"]


def _seen(api, referrer: str) -> list[tuple[str, str, str | None]]:
    status, body = api.graphql(REFERRALS, token=tokens.mint(referrer, f"{referrer}@example.com"))
    assert status == 200 and "errors" not in body, body
    return [
        (i["friendName"], i["status"], i["reason"]) for i in reversed(body["data"]["customer"]["referrals"]["items"])
    ]


def _published(api, detail_type: str, referee: str) -> list[dict]:
    status, events = api.request("GET", "/_local/published")
    assert status == 200
    return [e for e in events if e["DetailType"] == detail_type and e["Detail"].get("refereeId") == referee]


def test_flagged_sign_ups_show_why_are_held_and_a_server_releases_one(local_api):
    window = RULES.velocity_window_minutes * 60
    if window - time.time() % window < 30:  # fixed windows: keep the sign-ups below in one
        time.sleep(window - time.time() % window + 0.5)
    referrer = new_id("rita")
    code = _register(local_api, referrer, f"{referrer}@example.com", "Rita Referrer")
    # Given the limit of friends sign up from this machine, then one more, then one at a disposable domain
    friends = [new_id("friend") for _ in range(RULES.velocity_limit + 2)]
    for n, friend in enumerate(friends[:-1]):
        _register(local_api, friend, f"{friend}@example.com", f"Friend N{n}", code)
    disposable = friends[-1]
    _register(local_api, disposable, f"{disposable}@Mailinator.com", "Dee Disposable", code)
    # Then all are linked and counted, and the referrer sees which are held for review, and why
    seen = _seen(local_api, referrer)
    assert len(seen) == RULES.velocity_limit + 2
    assert [reason for _, _, reason in seen] == [None] * RULES.velocity_limit + ["VELOCITY", "DISPOSABLE_EMAIL"]
    assert seen[-1] == ("Dee D.", "REGISTERED", "DISPOSABLE_EMAIL")
    # When the flagged friends' orders stand through their window
    now = datetime.now(UTC)
    flagged = friends[-2:]
    entries = [
        {
            "Source": "commerce.orders",
            "DetailType": "OrderPlaced",
            "Detail": json.dumps(
                {"orderId": f"o-{f}", "customerId": f, "total": {"amount": "45.00", "currency": "GBP"}}
            ),
            "Time": now.isoformat(),
        }
        for f in flagged
    ]
    status, answer = local_api.request("POST", "/_local/events", {"Entries": entries})
    assert status == 200 and answer["FailedEntryCount"] == 0
    status, run = local_api.request(
        "POST", "/_local/invoke/ReconcileFunction", {"time": (now + timedelta(days=15)).isoformat()}
    )
    # (the local server is the session's: the run settles whatever else is due in it, so its totals are at least
    # ours; what happened to these two friends is read below, friend by friend)
    assert status == 200 and run["held"] >= 2
    # Then no reward: each is held, says so, and the reviewer is told
    for friend in flagged:
        assert _published(local_api, "ReferralRewardEarned", friend) == []
        (held,) = _published(local_api, "ReferralRewardHeld", friend)
        assert held["Detail"]["orderId"] == f"o-{friend}"
    assert [(s, r) for _, s, r in _seen(local_api, referrer)[-2:]] == [
        ("HELD", "VELOCITY"),
        ("HELD", "DISPOSABLE_EMAIL"),
    ]
    # And a customer's token cannot decide
    customer = tokens.mint(referrer, f"{referrer}@example.com")
    status, refused = local_api.graphql(REVIEW, {"id": flagged[0], "decision": "RELEASE"}, customer)
    assert refused["data"]["reviewReferral"] is None and refused["errors"][0]["errorType"] == "Unauthorized"
    # When a server releases one and rejects the other
    headers = {"Content-Type": "application/json", iam.HEADER: iam.DEFAULT_KEY}
    decisions = {}
    for friend, decision in zip(flagged, ["RELEASE", "REJECT"], strict=True):
        body = {"query": REVIEW, "variables": {"id": friend, "decision": decision}}
        status, decisions[friend] = local_api.request("POST", "/graphql", body, headers)
        assert status == 200 and "errors" not in decisions[friend], decisions[friend]
    # Then the released one earns its one reward now; the rejected one never will
    released = decisions[flagged[0]]["data"]["reviewReferral"]
    assert (released["status"], released["reason"]) == ("EARNED", None)
    (earned,) = _published(local_api, "ReferralRewardEarned", flagged[0])
    assert earned["Detail"]["reward"] == {"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}
    rejected = decisions[flagged[1]]["data"]["reviewReferral"]
    assert (rejected["status"], rejected["reason"]) == ("REJECTED", "DISPOSABLE_EMAIL")
    assert _published(local_api, "ReferralRewardEarned", flagged[1]) == []
    assert [(s, r) for _, s, r in _seen(local_api, referrer)[-2:]] == [
        ("EARNED", None),
        ("REJECTED", "DISPOSABLE_EMAIL"),
    ]
