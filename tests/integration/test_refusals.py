"""Retried or refused (docs/faults.md): a request AWS refuses outright (AccessDenied, ValidationException, no such
table) is a fault of the deployment, never contention. It is asked once, logged once with its code and operation,
counted, and answered as an internal failure: never `ServiceBusy`, never swallowed, never per-address "not sent".
Contention on one item (TransactionConflictException on an UpdateItem) is retried like a transaction's."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from devserver import access
from referrals import storage
from referrals.errors import Refused
from tests.conftest import new_id
from tests.integration.helpers import call_api, customer, register
from tests.integration.rewards_helpers import later, reconcile, referral, referred_friend

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture(autouse=True)
def enforced(monkeypatch):
    monkeypatch.delenv("REFERRALS_LOCAL_IAM", raising=False)  # IAM on, whatever the shell says


@pytest.fixture
def deny(monkeypatch):
    """Take an action away from a function's role for this test: an explicit Deny beside its template policies."""

    def deny(function: str, action: str) -> None:
        role = access.role(function)
        statement = {"Effect": "Deny", "Action": action, "Resource": "*"}
        narrowed = access.Role(role.function, role.name, (*role.documents, {"Statement": [statement]}))
        assert access._roles is not None
        monkeypatch.setitem(access._roles, function, narrowed)

    return deny


def _refusals(caplog, operation: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "AWS refused a request" and r.operation == operation]


def test_a_read_the_role_may_not_make_is_asked_once_logged_counted_and_an_internal_failure(deny, calls, caplog, capsys):
    me = new_id()
    assert register(me, f"{me}@example.com")["data"]["newCustomer"] is True
    deny("ApiFunction", "dynamodb:BatchGetItem")
    calls.reset()
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        answer = customer(me, f"{me}@example.com")
    assert answer["error"] == {"type": "InternalFailure", "message": "An internal error occurred", "info": None}
    assert calls.count("dynamodb") == {"BatchGetItem": 1}  # not retried as if busy
    (record,) = _refusals(caplog, "BatchGetItem")
    assert (record.awsService, record.errorCode) == ("DynamoDB", "AccessDeniedException")
    assert me not in record.getMessage() and "arn:" not in str(record.__dict__)
    assert '"ErrorRefused"' in capsys.readouterr().out


def test_a_refused_registration_transaction_is_not_retried_as_contention(deny, calls, caplog):
    deny("ApiFunction", "dynamodb:PutItem")  # the account's put, inside the transaction
    me = new_id()
    calls.reset()
    with caplog.at_level(logging.INFO):
        answer = register(me, f"{me}@example.com")
    assert answer["error"]["type"] == "InternalFailure"
    assert calls.count("dynamodb").get("TransactWriteItems") == 1
    assert [r.errorCode for r in _refusals(caplog, "TransactWriteItems")] == ["AccessDeniedException"]


def test_growing_the_count_shards_when_refused_raises_and_is_never_someone_else_growing_it(deny, calls):
    code = register(new_id(), "r@example.com")["data"]["customer"]["referralCode"]
    item = storage.load_code(code)
    assert item is not None
    deny("ApiFunction", "dynamodb:UpdateItem")
    calls.reset()
    with access.acting_as("ApiFunction"), pytest.raises(Refused) as refused:
        storage.grow_count_shards(item, 1, 2)
    assert refused.value.code == "AccessDeniedException"
    assert calls.count("dynamodb") == {"TransactWriteItems": 1}
    # And when another registration did grow it first, that is the answer False, as before
    with access.acting_as("ApiFunction"):
        access._roles["ApiFunction"] = access.roles(__import__("devserver.stack").stack.Stack())["ApiFunction"]
        assert storage.grow_count_shards(item, 1, 2) is True
        assert storage.grow_count_shards(item, 1, 2) is False


def test_ses_refusing_the_send_is_an_internal_failure_not_invitations_not_sent(deny, calls, caplog):
    me = new_id()
    assert register(me, f"{me}@example.com")["data"]["newCustomer"] is True
    deny("ApiFunction", "ses:SendBulkTemplatedEmail")
    calls.reset()
    with caplog.at_level(logging.INFO):
        arguments = {"emailAddresses": ["a@x.org"]}
        answer = call_api("send-referral-email.json", me, f"{me}@example.com", arguments=arguments)
    assert answer["error"]["type"] == "InternalFailure"
    assert calls.count("ses") == {"SendBulkTemplatedEmail": 1}
    assert [r.awsService for r in _refusals(caplog, "SendBulkTemplatedEmail")] == ["SES"]


def test_eventbridge_refusing_put_events_after_a_registration_is_logged_and_the_sign_up_stands(deny, caplog):
    referrer = new_id()
    code = register(referrer, f"{referrer}@example.com")["data"]["customer"]["referralCode"]
    deny("ApiFunction", "events:PutEvents")
    friend = new_id()
    with caplog.at_level(logging.INFO):
        answer = register(friend, f"{friend}@example.com", code=code)
    assert answer["data"]["newCustomer"] is True  # committed: the reconciliation publishes it later
    assert [r.errorCode for r in _refusals(caplog, "PutEvents")] == ["AccessDeniedException"]


def test_a_transaction_conflict_on_an_expiry_update_is_retried_and_the_run_completes(faults, monkeypatch):
    pair = referred_friend()
    deadline = pair.registered_at + timedelta(days=365)
    # The run's UpdateItem conflicts (a review or an order event holds the referral), until we back off once
    faults.arm(list(range(1, 40 + 2 * storage.DUE_SHARDS)), "conflict", attempts=1, operation="UpdateItem")
    monkeypatch.setattr("referrals.storage.client._backoff", lambda attempt: faults.disarm())
    report = reconcile(later(deadline, seconds=1))
    faults.disarm()
    assert faults.injected >= 1
    assert report["expired"] == 1
    assert referral(pair.friend).status == "EXPIRED"


@pytest.mark.parametrize(
    ("action", "write"),
    [
        (
            "dynamodb:UpdateItem",
            lambda: storage.suppress_address("default", "a" * 64, "BOUNCE", "2026-11-28T00:00:00Z"),
        ),
        ("dynamodb:DeleteItem", lambda: storage.release_address("default", "a" * 64, "someone", 1)),
    ],
    ids=["suppress_address", "release_address"],
)
def test_an_address_write_the_role_may_not_make_is_refused_not_busy(deny, calls, action, write):
    # Given the mail events function without the grant (a deployment fault, not contention)
    deny("MailEventsFunction", action)
    calls.reset()
    # When it writes, Then it is refused once: never ServiceBusy, never retried
    with access.acting_as("MailEventsFunction"), pytest.raises(Refused):
        write()
    assert sum(calls.count("dynamodb").values()) == 1


def test_a_transaction_that_timed_out_through_botocores_retries_is_not_asked_again(faults, calls):
    # Given DynamoDB never answers the registration's transaction (every HTTP attempt times out)
    me = new_id()
    calls.reset()
    faults.arm(1, "timeout", operation="TransactWriteItems")  # without a code, registration is one transaction
    answer = register(me, f"{me}@example.com")
    faults.disarm()
    # Then botocore's own attempts were all it got: one call, answered busy, well inside the function's timeout
    assert faults.injected == 3  # botocore's standard mode: the first attempt and two retries
    assert calls.count("dynamodb").get("TransactWriteItems") == 1
    assert answer["error"]["type"] == "ServiceBusy"
