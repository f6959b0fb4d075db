"""Erasure and export leave no personal data in the logs either: not the email, not the name, and not even
the erased customer's id (the audit line carries a digest of it, docs/privacy.md)."""

from __future__ import annotations

import copy
import logging

import pytest

from devserver.lambdas import LocalFunction
from devserver.samples import load_event
from referrals import privacy
from tests.conftest import new_id
from tests.drills.log_scan import log_text, powertools_logging  # noqa: F401 - the fixture, used by name below

REGISTER = """mutation R($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error newCustomer }
}"""
SECRETS = {
    "referrer email": "Gwendolyn.Private@example.com",
    "friend email": "henrietta.private@example.org",
    "friend full name": "Henrietta Privatesurname",
    "friend last name": "Privatesurname",
    "staff session": "jane.doe@corp.example",
}


@pytest.mark.usefixtures("powertools_logging")  # before capsys: see tests/drills/log_scan.py
def test_erasure_and_export_log_no_personal_data(appsync, aws_env, capsys, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="referrals")
    privacy_function = LocalFunction(aws_env.functions()["PrivacyFunction"])
    referrer, friend = new_id(), new_id()
    created = appsync(REGISTER, {"input": {"fullName": "Gwendolyn Smith"}}, referrer, SECRETS["referrer email"])
    code = created["data"]["register"]["customer"]["referralCode"]
    appsync(
        REGISTER,
        {"input": {"fullName": SECRETS["friend full name"], "referralCode": code}},
        friend,
        SECRETS["friend email"],
    )
    capsys.readouterr()
    caplog.clear()

    # A privacy desk whose role session is named after a person, exporting and erasing both customers
    def server_event(sample: str, customer_id: str) -> dict:
        event = copy.deepcopy(load_event(sample))
        event["arguments"] = {"customerId": customer_id}
        event["identity"]["userArn"] = f"arn:aws:sts::123456789012:assumed-role/PrivacyDesk/{SECRETS['staff session']}"
        return event

    privacy_function.invoke(server_event("export-customer.json", friend))
    privacy_function.invoke(server_event("erase-customer.json", friend))
    deleted = copy.deepcopy(load_event("customer-deleted.json"))
    deleted["detail"] = {"customerId": referrer}
    privacy_function.invoke(deleted)
    malformed = copy.deepcopy(load_event("customer-deleted.json"))
    malformed["detail"] = {"customerId": SECRETS["friend email"] + "\n"}
    privacy_function.invoke(malformed)

    captured = capsys.readouterr()
    text = log_text(captured, caplog)
    assert privacy.reference(friend) in text, "the audit line is missing: the scan would prove nothing"
    for what, secret in SECRETS.items():
        assert secret.lower() not in text.lower(), f"{what} appears in the logs"
    for customer_id in (referrer, friend):
        assert customer_id not in text, "an erased customer's id appears in the logs"
