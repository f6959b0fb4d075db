"""The limits the deployed API sets, enforced by the local stand-in too, and token checks beyond the contract's."""

from __future__ import annotations

import base64
import json

import pytest

from devserver import tokens
from tests.conftest import new_id

pytestmark = pytest.mark.http


def _forge(claims_change: dict) -> str:
    token = tokens.mint(new_id(), "x@example.com")
    _, body, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims.update(claims_change)
    return tokens.sign(claims)


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "another-client"},
        {"aud": "StorefrontClient2"},  # AppIdClientRegex is anchored: ^StorefrontClient$
        {"aud": ""},
        {"token_use": "access", "client_id": "another-client"},  # an access token's client is its client_id
        {"token_use": "refresh"},
        {"sub": ""},
        {"exp": "soon"},
    ],
    ids=[
        "issuer",
        "audience",
        "audience-longer",
        "empty-audience",
        "access-token-of-another-client",
        "not-a-pool-token",
        "no-subject",
        "bad-expiry",
    ],
)
def test_validly_signed_tokens_with_wrong_claims_are_refused(local_api, change):
    status, body = local_api.graphql("{ customer { referralCode } }", token=_forge(change))
    assert status == 401 and body["errors"][0]["errorType"] == "UnauthorizedException"


def test_introspection_is_off_as_the_template_deploys_it(local_api):
    token = tokens.mint(new_id(), "x@example.com")
    _, body = local_api.graphql("{ __schema { types { name } } }", token=token)
    assert body["data"] is None and "introspection" in body["errors"][0]["message"]
    _, body = local_api.graphql("{ customer { __typename } }", token=token)
    assert "errors" not in body


def test_queries_deeper_than_the_template_allows_are_refused(local_api):
    token = tokens.mint(new_id(), "x@example.com")
    deep = (
        "{ customer { socialReferralMethods { __typename "
        + "".join("... on SocialReferralMethod { " for _ in range(6))
        + "type"
        + " }" * 6
        + " } } }"
    )
    _, body = local_api.graphql(deep, token=token)
    assert body["data"] is None and body["errors"][0]["errorType"] == "ValidationError"


def test_a_batch_of_operations_is_refused(local_api):
    token = tokens.mint(new_id(), "x@example.com")
    status, body = local_api.request(
        "POST", "/graphql", [{"query": "{ customer { referralCode } }"}] * 3, {"Authorization": token}
    )
    assert status == 400 and body["errors"][0]["errorType"] == "MalformedHttpRequestException"


def test_many_operations_in_one_document_need_a_name(local_api):
    token = tokens.mint(new_id(), "x@example.com")
    _, body = local_api.graphql(
        "query A { customer { referralCode } } query B { customer { referralCode } }", token=token
    )
    assert body["data"] is None and body["errors"]


def test_tokens_are_minted_for_the_api_s_app_client(local_api):
    """The API accepts only its storefront client's tokens (AppIdClientRegex): /_local/token mints those."""
    status, minted = local_api.request("POST", "/_local/token", {"sub": new_id(), "email": "x@example.com"})
    assert status == 200
    token = minted["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == "StorefrontClient" and claims["token_use"] == "id"
    status, body = local_api.graphql("{ customer { referralCode } }", token=token)
    assert status == 200 and body == {"data": {"customer": None}}
