"""Retention as docs/privacy.md states it: after every flow has run, each item in every table is of a kind the
retention table lists, and carries a TTL (`expiresAt`) exactly when that kind expires, no later than stated."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from devserver.stack import REGION, ROOT
from referrals.config import load_settings
from tests.conftest import load_event, new_id
from tests.integration.helpers import call_api, function, register
from tests.integration.rewards_helpers import deliver, placed, reconcile, refunded, registered_at

pytestmark = pytest.mark.usefixtures("aws_env")

DAY = 86_400
# A sign-up velocity counter lives until one window past its own (referrals.abuse): two windows from now at most.
VELOCITY = 2 * 60 * load_settings().site(None).abuse.velocity_window_minutes + 60
# (table, kind as docs/privacy.md names it, how to tell it by its key, the longest TTL from now in seconds or None
# when it must carry none). The flows run at about "now": order facts expire 365 + 14 + 30 days after the friend
# registered, a cap counter 400 days after the window (14 days) closed, a claim after the 30-day cool-down.
KINDS = [
    ("CustomersTable", "account", lambda k: True, None),
    ("CodesTable", "referral code", lambda k: True, None),
    ("ReferralCountsTable", "referral count shard", lambda k: True, None),
    ("ReferralsTable", "`REFEREE#<friend>` / `REFERRAL`", lambda k: k["sk"] == "REFERRAL", None),
    (
        "ReferralsTable",
        "`REFEREE#<friend>` / `ORDER#…`",
        lambda k: k["sk"].startswith("ORDER#"),
        (365 + 14 + 30) * DAY + 3600,
    ),
    (
        "ReferralsTable",
        "`REFERRER#<referrer>` / `CAP#<month>`",
        lambda k: k["sk"].startswith("CAP#"),
        (14 + 400) * DAY + 3600,
    ),
    ("InvitesTable", "`BUCKET#CUSTOMER#<id>`", lambda k: k["pk"].startswith("BUCKET#CUSTOMER#"), DAY + 60),
    ("InvitesTable", "`BUCKET#SITE#<site>`", lambda k: k["pk"].startswith("BUCKET#SITE#"), 60),
    ("InvitesTable", "`BUCKET#LOOKUP#<IP hash>`", lambda k: k["pk"].startswith("BUCKET#LOOKUP#"), 3600),
    (
        "InvitesTable",
        "`ADDRESS#…` claim",
        lambda k: k["pk"].startswith("ADDRESS#") and "suppressedAt" not in k,
        30 * DAY + 60,
    ),
    ("InvitesTable", "`ADDRESS#…` suppression", lambda k: k["pk"].startswith("ADDRESS#") and "suppressedAt" in k, None),
    ("InvitesTable", "`VELOCITY#<referrer>#<window>#<source hash>`", lambda k: k["pk"][:9] == "VELOCITY#", VELOCITY),
    (
        "ProgrammeFiguresTable",
        "`FIGURES#<site>#<shard>` / `DAY#<date>`",
        lambda k: k["pk"].startswith("FIGURES#"),
        None,
    ),
]


def _plain(item: dict) -> dict:
    return {name: next(iter(value.values())) for name, value in item.items()}


def _every_flow() -> None:
    """Register (with and without a code), invite, a bounce, the public lookup, orders, the reconciliation."""
    referrer = new_id("referrer")
    code = register(referrer, "referrer@example.com", "Rita Referrer")["data"]["customer"]["referralCode"]
    friend = new_id("friend")
    register(friend, "friend@example.com", "Fran Friend", code=code)
    call_api(
        "send-referral-email.json",
        referrer,
        "referrer@example.com",
        arguments={"emailAddresses": ["a@example.org", "b@example.org"]},
    )
    bounce = copy.deepcopy(load_event("ses-bounce.json"))
    bounce["detail"]["bounce"]["bouncedRecipients"] = [{"emailAddress": "b@example.org"}]
    function("MailEventsFunction").invoke(bounce)
    lookup = copy.deepcopy(load_event("referral-offer-query.json"))
    lookup["arguments"] = {"code": code}
    function("ApiFunction").invoke(lookup)
    at = registered_at(friend) + timedelta(hours=1)
    deliver(placed("o-1", friend, at))
    deliver(refunded("o-1", friend, at + timedelta(days=1), "5.00"))
    reconcile(at + timedelta(days=15))


def test_every_item_is_a_documented_kind_with_ttl_exactly_where_it_expires():
    _every_flow()
    now = datetime.now(UTC).timestamp()
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    documented = (ROOT / "docs" / "privacy.md").read_text()
    seen: set[str] = set()
    for table in {k[0] for k in KINDS}:
        for raw in dynamodb.scan(TableName=table)["Items"]:
            item = _plain(raw)
            matches = [(kind, horizon) for t, kind, test, horizon in KINDS if t == table and test(item)]
            assert len(matches) == 1, f"{table}: an item of no documented kind: {sorted(item)}"
            ((kind, horizon),) = matches
            seen.add(kind)
            if horizon is None:
                assert "expiresAt" not in item, f"{kind} must not expire by TTL"
            else:
                assert "expiresAt" in item, f"{kind} must carry a TTL"
                assert int(item["expiresAt"]) <= now + horizon, f"{kind} is kept longer than documented"
    # Every kind the flows wrote is a row of the retention table (the outbox is emptied once published)
    for kind in seen:
        assert kind in documented, f"docs/privacy.md does not list {kind}"
    assert len(seen) == len(KINDS), f"the flows wrote no {[k[1] for k in KINDS if k[1] not in seen]}"
    assert re.search(r"`REFEREE#<friend>` / `EVENT#", documented)
