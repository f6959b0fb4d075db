"""An access token is not an identity token. AppSync's Cognito user-pool mode lets either through (an access token
carries `token_use: access`, the pool's `client_id` and no `email`), so the function is what refuses it."""

from __future__ import annotations

import pytest

from devserver.samples import appsync_event
from tests.conftest import new_id
from tests.integration.helpers import customer, function, register

pytestmark = pytest.mark.usefixtures("aws_env")

ACCESS_CLAIMS = {"token_use": "access", "client_id": "StorefrontClient", "scope": "aws.cognito.signin.user.admin"}


def _as_access_token(sample: str, customer_id: str, arguments: dict | None = None) -> dict:
    event = appsync_event(sample, customer_id, f"{customer_id}@example.com", arguments=arguments)
    claims = {k: v for k, v in event["identity"]["claims"].items() if k not in {"email", "email_verified", "aud"}}
    event["identity"]["claims"] = {**claims, **ACCESS_CLAIMS, "username": customer_id}
    return event


@pytest.mark.parametrize("sample", ["register.json", "customer-query.json"])
def test_an_access_token_is_refused_with_a_clear_error_and_nothing_is_written(sample, calls):
    me = new_id()
    arguments = {"input": {"fullName": "Ada Access"}} if sample == "register.json" else None
    calls.reset()
    answer = function("ApiFunction").invoke(_as_access_token(sample, me, arguments))
    assert answer == {
        "error": {
            "type": "Unauthorized",
            "message": "Sign in with the ID token: a token with token_use 'access' does not identify a customer",
            "info": None,
        }
    }
    assert calls.count("dynamodb") == {}
    assert customer(me, f"{me}@example.com")["data"] is None  # no account was made


def test_an_id_token_is_served():
    me = new_id()
    assert register(me, f"{me}@example.com")["data"]["newCustomer"] is True
