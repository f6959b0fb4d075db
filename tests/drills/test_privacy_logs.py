"""No raw email address or full name in any log line: every flow runs once, its logs captured and scanned."""

from __future__ import annotations

import copy
import logging

import pytest

from devserver.lambdas import LocalFunction
from devserver.samples import load_event
from tests.conftest import new_id
from tests.drills.log_scan import log_text, powertools_logging  # noqa: F401 - the fixture, used by name below

REGISTER = """mutation R($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error newCustomer }
}"""
SECRETS = {
    "referrer email": "Alice.Private@example.com",
    "friend email": "frances.quinn.private@example.org",
    "invited friend": "dora.invited@example.net",
    "friend full name": "Frances Quinnprivate",
    "friend last name": "Quinnprivate",
    "referrer last name": "Smithprivate",
}


def _order_event(name: str, customer_id: str, order_id: str, time: str) -> dict:
    event = copy.deepcopy(load_event(name))
    event["detail"]["customerId"] = customer_id
    event["detail"]["orderId"] = order_id
    event["id"] = new_id("event")
    event["time"] = time
    return event


@pytest.mark.usefixtures("powertools_logging")  # before capsys: see tests/drills/log_scan.py
def test_no_personal_data_in_any_log_line(appsync, aws_env, capsys, caplog):
    caplog.set_level(logging.INFO)  # libraries as deployed; botocore at DEBUG would echo request bodies
    caplog.set_level(logging.DEBUG, logger="referrals")  # our own logs at their most talkative
    referrer, friend = new_id(), new_id()
    functions = aws_env.functions()
    orders = LocalFunction(functions["OrderEventsFunction"])
    reconcile = LocalFunction(functions["ReconcileFunction"])

    created = appsync(REGISTER, {"input": {"fullName": "Alice Smithprivate"}}, referrer, SECRETS["referrer email"])
    code = created["data"]["register"]["customer"]["referralCode"]
    appsync(
        REGISTER,
        {"input": {"fullName": SECRETS["friend full name"], "referralCode": code}},
        friend,
        SECRETS["friend email"],
    )
    appsync("{ customer { referralCode referralCount } }", None, referrer, SECRETS["referrer email"])
    appsync(
        "mutation S($a: [String!]!) { sendReferralEmail(emailAddresses: $a) }",
        {"a": [SECRETS["invited friend"], "not an address", SECRETS["referrer email"]]},
        referrer,
        SECRETS["referrer email"],
    )
    appsync(
        "mutation S($a: [String!]!) { sendReferralEmail(emailAddresses: $a) }",
        {"a": [SECRETS["invited friend"]]},
        referrer,
        SECRETS["referrer email"],
    )
    orders.invoke(_order_event("order-placed.json", friend, "ORD-P1", "2026-12-01T10:00:00Z"))
    orders.invoke(_order_event("order-refunded.json", friend, "ORD-P1", "2026-12-02T10:00:00Z"))
    orders.invoke(_order_event("order-placed.json", friend, "ORD-P2", "2026-12-03T10:00:00Z"))
    reconcile.invoke({"time": "2026-12-20T10:00:00Z"})
    appsync(
        "{ customer { referrals { items { status friendName reason } total } } }",
        None,
        referrer,
        SECRETS["referrer email"],
    )

    captured = capsys.readouterr()
    text = log_text(captured, caplog)  # every record's fields and traceback, whichever test made the Logger
    assert text.strip(), "the flows logged nothing: the scan would prove nothing"
    for what, secret in SECRETS.items():
        assert secret.lower() not in text.lower(), f"{what} appears in the logs"
