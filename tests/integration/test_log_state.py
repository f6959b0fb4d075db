"""Log keys one invocation appends never reach the next invocation of the same execution environment.

Powertools' Logger lives in the module, so what a handler appends (`logger.append_keys`) stays on it across warm
invocations unless the handler's decorator clears it: every function uses
`@logger.inject_lambda_context(clear_state=True)`, which starts each invocation from the logger's own keys only.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from devserver.lambdas import LocalFunction
from devserver.samples import load_event
from devserver.stack import Stack

pytestmark = pytest.mark.usefixtures("aws_env")

UNKNOWN_FIELD = {"info": {"parentTypeName": "Query", "fieldName": "noSuchField"}, "arguments": {}}

# For each function of template.yaml: an event that makes it log at least one line, and writes nothing of note.
LOGGING_EVENT: dict[str, dict[str, Any]] = {
    "ApiFunction": UNKNOWN_FIELD,  # "refused"
    "ReviewFunction": UNKNOWN_FIELD,  # "refused"
    "PrivacyFunction": UNKNOWN_FIELD,  # "refused"
    "OrderEventsFunction": {"id": "not-an-order", "detail-type": "Nothing"},  # "malformed order event"
    "MailEventsFunction": load_event("ses-bounce.json"),  # "mail event"
    "ReconcileFunction": {"time": "2000-01-01T00:00:00Z"},  # "reconciled", nothing due so long ago
    "ApiKeyKeeperFunction": {},  # "public API key extended"
    "PreTokenGenerationFunction": {},  # "token site set", for a pool and client made in the test (_event)
    "HttpApiFunction": {"routeKey": "GET /nowhere", "requestContext": {"routeKey": "GET /nowhere"}},  # "refused"
}


def _event(logical_id: str) -> dict[str, Any]:
    if logical_id != "PreTokenGenerationFunction":
        return LOGGING_EVENT[logical_id]
    import boto3

    from devserver.stack import REGION

    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="shoppers")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="shop-site-default")["UserPoolClient"]
    event = load_event("pre-token-generation.json")
    event["userPoolId"], event["callerContext"]["clientId"] = pool, client["ClientId"]
    return event


class Logged:
    """What the functions' Powertools logger writes, read from its own handler: the handler keeps the stream it
    was made with (an earlier test's captured stdout, maybe), so capsys alone may see nothing."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@contextmanager
def _logged(environment: Any) -> Iterator[Logged]:
    handler = environment.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    logged = Logged()
    before = handler.setStream(logged.buffer)
    try:
        yield logged
    finally:
        handler.setStream(before)


def test_every_function_of_the_template_is_covered():
    assert set(LOGGING_EVENT) == set(Stack().functions())


@pytest.mark.parametrize("logical_id", sorted(LOGGING_EVENT))
def test_keys_appended_in_one_invocation_are_gone_in_the_next(logical_id):
    function = LocalFunction(Stack().functions()[logical_id])
    event = _event(logical_id)
    function.invoke(event)
    (environment,) = function._idle  # the warm environment the next invocation reuses
    # Given the first invocation's handler left a key on the module's logger, as `logger.append_keys` does
    environment.logger.append_keys(leftOver="from-the-first-invocation")
    # When the same environment is invoked again
    with _logged(environment) as logged:
        function.invoke(event)
    assert function.cold_starts == 1
    lines = logged.lines()
    # Then its log lines carry none of the first invocation's keys, and still the invocation's context
    assert lines, f"{logical_id} logged nothing: the check would prove nothing"
    assert all("leftOver" not in line for line in lines), lines
    assert all(line["cold_start"] is False and line["function_name"] == logical_id for line in lines), lines


def test_a_privacy_event_s_keys_do_not_follow_into_the_next_graphql_call():
    function = LocalFunction(Stack().functions()["PrivacyFunction"])
    function.invoke(UNKNOWN_FIELD)  # a warm environment, whose logger can be read
    (environment,) = function._idle
    with _logged(environment) as logged:
        # Given a CustomerDeleted event, whose handling appends its eventId and detailType to the log keys
        deleted = load_event("customer-deleted.json")
        function.invoke(deleted)
        assert any(line.get("eventId") == deleted["id"] for line in logged.lines())
        # When the same environment then answers a GraphQL call
        function.invoke(UNKNOWN_FIELD)
        lines = logged.lines()
    assert function.cold_starts == 1
    # Then none of its log lines names the earlier event
    assert lines
    assert all("eventId" not in line and "detailType" not in line for line in lines), lines
