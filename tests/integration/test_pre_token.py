"""The site in an ID token comes from the app client signed in with (functions/pre_token/app.py), never from the
shopper: Cognito's pre-token-generation trigger, run as Lambda runs it, against moto's Cognito."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from devserver.lambdas import FunctionError, LocalFunction
from devserver.stack import REGION
from tests.conftest import AWS_CALLS, load_event

pytestmark = pytest.mark.usefixtures("aws_env")


def _pool_with_clients(*names: str) -> tuple[str, list[str]]:
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="shoppers")["UserPool"]["Id"]
    ids = [cognito.create_user_pool_client(UserPoolId=pool, ClientName=n)["UserPoolClient"]["ClientId"] for n in names]
    return pool, ids


def _token_event(pool: str, client: str, written_site: str | None = None) -> dict:
    event = copy.deepcopy(load_event("pre-token-generation.json"))
    event["userPoolId"], event["callerContext"]["clientId"] = pool, client
    if written_site is not None:
        event["request"]["userAttributes"]["custom:site"] = written_site
    return event


def test_the_token_says_the_site_of_the_client_signed_in_with_whatever_the_account_holds(aws_env, monkeypatch):
    german_site = {"name": "Beispiel", "domain": "beispiel.de", "sender": "hallo@beispiel.de"}
    monkeypatch.setenv("SITES_CONFIG", json.dumps({"sites": {"default": {}, "de": german_site}}))
    pool, (storefront, german) = _pool_with_clients("shop-site-default", "shop-site-de")
    trigger = LocalFunction(aws_env.functions()["PreTokenGenerationFunction"])
    # Given an account whose custom:site says "de" (say, set by an administrator)
    # When it signs in at the default site's storefront, and then at the German one
    at_default = trigger.invoke(_token_event(pool, storefront, written_site="de"))
    at_german = trigger.invoke(_token_event(pool, german, written_site="de"))
    # Then each token says the storefront's site
    assert at_default["response"]["claimsOverrideDetails"] == {"claimsToAddOrOverride": {"custom:site": "default"}}
    assert at_german["response"]["claimsOverrideDetails"] == {"claimsToAddOrOverride": {"custom:site": "de"}}
    # And a client's name is read once per environment, not at every sign-in
    AWS_CALLS.reset()
    trigger.invoke(_token_event(pool, storefront))
    assert AWS_CALLS.count("cognito-idp") == {}


@pytest.mark.parametrize("name", ["shop-storefront", "shop-site-atlantis", "shop-site-"])
def test_a_client_that_names_no_configured_site_gets_no_token(aws_env, name):
    pool, (client,) = _pool_with_clients(name)
    trigger = LocalFunction(aws_env.functions()["PreTokenGenerationFunction"])
    with pytest.raises(FunctionError, match="names no configured site"):
        trigger.invoke(_token_event(pool, client))


def test_no_app_client_of_the_stack_may_write_the_site():
    from devserver.stack import Stack

    stack = Stack()
    for name, client in stack.of_type("AWS::Cognito::UserPoolClient").items():
        assert "custom:site" not in client["WriteAttributes"], name
        assert stack.resolve(client["ClientName"]).endswith("-site-default"), name
    # In every stack, so a pool of the operator's can have it too
    assert "Condition" not in stack.resources["PreTokenGenerationFunction"]
    pool = stack.of_type("AWS::Cognito::UserPool")["UserPool"]
    assert pool["LambdaConfig"]["PreTokenGeneration"] == {"Fn::GetAtt": ["PreTokenGenerationFunction", "Arn"]}
    (site,) = [a for a in pool["Schema"] if a["Name"] == "site"]
    assert site["Mutable"] is False


def test_the_stacks_own_client_serves_the_default_site_whatever_its_key(aws_env, monkeypatch):
    # Given sites keyed "uk" and "de", "uk" the default: the stack's client is still `<stack>-site-default`
    uk = {"name": "Shop", "domain": "shop.example.co.uk", "sender": "friends@shop.example.co.uk"}
    de = {"name": "Beispiel", "domain": "beispiel.de", "sender": "hallo@beispiel.de"}
    monkeypatch.setenv("SITES_CONFIG", json.dumps({"defaultSite": "uk", "sites": {"uk": uk, "de": de}}))
    pool, (storefront,) = _pool_with_clients("referrals-site-default")
    trigger = LocalFunction(aws_env.functions()["PreTokenGenerationFunction"])
    answer = trigger.invoke(_token_event(pool, storefront))
    assert answer["response"]["claimsOverrideDetails"] == {"claimsToAddOrOverride": {"custom:site": "uk"}}


def test_a_refusal_is_not_kept_so_a_renamed_client_is_served_at_once(aws_env):
    pool, (client,) = _pool_with_clients("shop-storefront")
    trigger = LocalFunction(aws_env.functions()["PreTokenGenerationFunction"])
    with pytest.raises(FunctionError, match="names no configured site"):
        trigger.invoke(_token_event(pool, client))
    boto3.client("cognito-idp", region_name=REGION).update_user_pool_client(
        UserPoolId=pool, ClientId=client, ClientName="shop-site-default"
    )
    answer = trigger.invoke(_token_event(pool, client))
    assert answer["response"]["claimsOverrideDetails"] == {"claimsToAddOrOverride": {"custom:site": "default"}}
