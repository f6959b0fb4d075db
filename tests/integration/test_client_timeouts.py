"""Every SDK client the layer builds has the timeouts and retry budget of referrals.config.CLIENT_TIMEOUTS, and
template.yaml's AWS_RETRY_MODE / AWS_MAX_ATTEMPTS say the same; moto-side, ClientRequestToken is honoured."""

from __future__ import annotations

import boto3
import pytest

from devserver import idempotency
from devserver.stack import REGION, Stack
from referrals import clients, mailer
from referrals.config import CLIENT_TIMEOUTS, SES_TIMEOUTS, TRIGGER_TIMEOUTS, ClientTimeouts
from referrals.storage import client as storage_client
from referrals.storage.models import BucketItem, CustomerItem

pytestmark = pytest.mark.usefixtures("aws_env")


def _assert_fits(config, timeouts: ClientTimeouts = CLIENT_TIMEOUTS) -> None:
    assert config.connect_timeout == timeouts.connect_seconds
    assert config.read_timeout == timeouts.read_seconds
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == timeouts.total_max_attempts


def test_every_client_the_layer_builds_has_the_timeouts():
    clients.client.cache_clear()
    _assert_fits(clients.client("events").meta.config)
    _assert_fits(clients.client("sqs").meta.config)
    _assert_fits(mailer._ses().meta.config, SES_TIMEOUTS)
    storage_client._connection = None
    _assert_fits(storage_client._client().meta.config)
    for model in (CustomerItem, BucketItem):
        _assert_fits(model._get_connection().connection.client.meta.config)


def test_one_call_fits_well_inside_the_functions_timeout():
    # 3 attempts of (0.5 s connect + 1 s read) and the longest backoffs (1 s, 2 s): 7.5 s of a 10 s Timeout
    assert CLIENT_TIMEOUTS.worst_case_seconds == 7.5
    functions = Stack().functions()
    # Cognito waits 5 s for its trigger, whose client makes two attempts: 4 s at worst
    assert functions.pop("PreTokenGenerationFunction").timeout_s == 5 > TRIGGER_TIMEOUTS.worst_case_seconds == 4.0
    assert min(spec.timeout_s for spec in functions.values()) >= 10 > CLIENT_TIMEOUTS.worst_case_seconds


def test_an_ses_send_is_made_once_by_botocore():
    # SES takes no idempotency token: botocore must not resend a send whose answer was lost (referrals.mailer tries
    # again only when nothing can have been sent, and only while the function's time left holds another try)
    assert SES_TIMEOUTS.total_max_attempts == 1 and SES_TIMEOUTS.worst_case_seconds == 3.5
    client_config = mailer._ses().meta.config
    assert client_config.retries == {"mode": "standard", "total_max_attempts": 1}


def test_the_template_says_the_same_for_clients_made_without_the_config():
    env = Stack().environment()
    assert env["AWS_RETRY_MODE"] == CLIENT_TIMEOUTS.retry_mode
    assert int(env["AWS_MAX_ATTEMPTS"]) == CLIENT_TIMEOUTS.total_max_attempts


def _transaction(token: str, name: str) -> dict:
    item = {"customerId": {"S": f"idem-{token}"}, "firstName": {"S": name}}
    return {
        "TransactItems": [
            {
                "Put": {
                    "TableName": "CustomersTable",
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(customerId)",
                }
            }
        ],
        "ClientRequestToken": token,
    }


def test_the_stand_in_honours_a_client_request_token_as_dynamodb_does(monkeypatch):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    # The same transaction again with the same token: success, applied once (moto alone fails its condition)
    dynamodb.transact_write_items(**_transaction("t1", "Ann"))
    dynamodb.transact_write_items(**_transaction("t1", "Ann"))
    # The same token with other parameters within 10 minutes: IdempotentParameterMismatch
    with pytest.raises(dynamodb.exceptions.IdempotentParameterMismatchException):
        dynamodb.transact_write_items(**_transaction("t1", "Bob"))
    # After the window the token is forgotten: the request is a new one, and its condition fails
    start = idempotency.clock()
    monkeypatch.setattr(idempotency, "clock", lambda: start + idempotency.WINDOW_SECONDS + 1)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(**_transaction("t1", "Ann"))
