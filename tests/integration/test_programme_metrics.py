"""The programme's figures per site (observability.count_for_site), which the dashboard draws a line per site of:
sign-ups with a code, invites sent, rewards earned, referrals reversed; each an EMF record with `service` and `site`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.integration.helpers import call_api, register
from tests.integration.rewards_helpers import cancelled, deliver, placed, reconcile, referred_friend

pytestmark = pytest.mark.usefixtures("aws_env")


def _per_site(out: str) -> dict[str, float]:
    """Figure -> total, of the EMF records carrying a `site` dimension (site "default" here)."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        if ["site", "service"] not in directive["Dimensions"] or record["site"] != "default":
            continue
        for metric in directive["Metrics"]:
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(record[metric["Name"]])
    return totals


def test_a_friends_story_counts_once_per_figure_for_its_site(capsys):
    capsys.readouterr()
    # A friend signs up with a code (one sign-up with a code; the referrer's own sign-up had none)
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    # orders, the window passes: one reward earned
    deliver(placed("o-1", pair.friend, at))
    assert reconcile(at + timedelta(days=14))["earned"] == 1
    figures = _per_site(capsys.readouterr().out)
    assert figures.get("SignUpsWithCode") == 1 and figures.get("ReferralRewardEarned") == 1
    # A second friend's order is cancelled inside the window: one referral reversed
    other = referred_friend(pair.referrer, pair.code)
    deliver(placed("o-2", other.friend, other.registered_at + timedelta(hours=1)))
    deliver(cancelled("o-2", other.friend, other.registered_at + timedelta(days=1)))
    figures = _per_site(capsys.readouterr().out)
    assert figures.get("SignUpsWithCode") == 1 and figures.get("ReferralReversed") == 1


def test_a_sign_up_without_a_code_is_not_one_with_a_code(capsys):
    capsys.readouterr()
    assert register("lonely-one", "lonely@example.com")["data"]["newCustomer"] is True
    assert "SignUpsWithCode" not in _per_site(capsys.readouterr().out)


def test_invites_sent_are_counted_for_the_inviters_site(capsys):
    assert register("inviter-1", "inviter@example.com")["data"]["newCustomer"] is True
    capsys.readouterr()
    answer = call_api(
        "send-referral-email.json",
        "inviter-1",
        "inviter@example.com",
        arguments={"emailAddresses": ["a@x.example", "b@x.example"]},
    )
    assert answer["data"] is True
    assert _per_site(capsys.readouterr().out).get("InvitesSent") == 2
