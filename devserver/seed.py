"""The records the sample events in events/ name, made at start-up so each sample does what its name says
(the table in docs/local.md): Alice, the referrer whose code is ABCD2345, and Bob, her friend, whose referral
is held for review.

Both sign up through ApiFunction's `register`, as a customer would: the one thing a sign-up would not choose is
Alice's code, pinned to the one the samples name. Bob signs up at a disposable address, which is what holds a
referral for review (referrals.abuse). Idempotent: run again, both sign-ups answer ACCOUNT_EXISTS and nothing
changes. The ids are the samples' own, which no test reuses (the tests make up uuids).
"""

from __future__ import annotations

import json
import sys
from typing import Any
from unittest import mock

from devserver import samples

SAMPLE_CODE = "ABCD2345"
ALICE = "11111111-2222-3333-4444-555555555555"
BOB = "66666666-7777-8888-9999-000000000000"
# A domain of the maintained disposable list: Bob's referral is flagged DISPOSABLE_EMAIL, held for review.
BOB_EMAIL = "bob@mailinator.com"


def seed(functions: dict[str, Any]) -> list[dict[str, Any]]:
    """Sign Alice and Bob up through ApiFunction, and give the sample sign-in its app client; the sign-ups'
    answers, for the log."""
    _sample_app_client()
    api = functions["ApiFunction"]
    alice = samples.load_event("register.json")
    assert alice["identity"]["sub"] == ALICE, "events/register.json signs up the seeded referrer"
    with mock.patch("referrals.codes.new_code", return_value=SAMPLE_CODE):
        answers = [api.invoke(alice)]
    bob = samples.appsync_event(
        "register.json", BOB, BOB_EMAIL, arguments={"input": {"fullName": "Bob Jones", "referralCode": SAMPLE_CODE}}
    )
    answers.append(api.invoke(bob))
    for answer in answers:
        outcome = (answer or {}).get("data") or {}
        if not outcome.get("newCustomer") and outcome.get("error") != "ACCOUNT_EXISTS":
            # Said, not fatal: a REFERRALS_CONFIG without the samples' `default` site still serves the API
            print(f"make dev: the sample customers were not seeded ({json.dumps(answer)})", file=sys.stderr)
    return answers


def _sample_app_client() -> None:
    """The user pool and app client events/pre-token-generation.json signs in with, in moto's Cognito, named as the
    stack names its storefront's client (`<stack>-site-default`: functions/pre_token/app.py), so the trigger finds
    the site. The stand-in mints tokens itself (devserver/tokens.py); this pool exists for that sample only. moto
    makes up the ids; they are changed to the sample's in moto's backend, which has no way to choose them."""
    import boto3
    from moto.cognitoidp.models import cognitoidp_backends

    from devserver.stack import ACCOUNT, REGION

    pool_id, client_id = _sample_sign_in()
    backend = cognitoidp_backends[ACCOUNT][REGION]
    if pool_id in backend.user_pools:
        return
    cognito = boto3.client("cognito-idp", region_name=REGION)
    made = cognito.create_user_pool(PoolName="local-shoppers")["UserPool"]["Id"]
    made_client = cognito.create_user_pool_client(UserPoolId=made, ClientName="local-site-default")
    pool = backend.user_pools.pop(made)
    pool.id = pool_id
    backend.user_pools[pool_id] = pool
    client = pool.clients.pop(made_client["UserPoolClient"]["ClientId"])
    client.id, client.user_pool_id = client_id, pool_id
    pool.clients[client_id] = client


def _sample_sign_in() -> tuple[str, str]:
    event = samples.load_event("pre-token-generation.json")
    return event["userPoolId"], event["callerContext"]["clientId"]
