"""The stand-in's tokens check the app client as AppSync's UserPoolConfig AppIdClientRegex does (template.yaml)."""

from __future__ import annotations

import time

import pytest

from devserver import tokens
from devserver.stack import Stack


def _signed(claims: dict) -> str:
    """Validly signed with the local key: only the checks beyond the signature can refuse it."""
    return tokens.sign(claims)


def _claims(**changes: object) -> dict:
    now = int(time.time())
    # A day long: the parameters are made when the tests are collected, which on a busy machine may be many minutes
    # before they run; expiry is not what these tests check
    claims = {"sub": "customer-a", "email": "a@example.com", "iss": tokens.ISSUER, "iat": now, "exp": now + 86_400}
    return {k: v for k, v in {**claims, **changes}.items() if v is not None}


def _access(client_id: object) -> dict:
    return _claims(email=None, token_use="access", client_id=client_id, scope="aws.cognito.signin.user.admin")


def test_the_client_is_the_template_s():
    regex = Stack().api_settings()["UserPoolConfig"]["AppIdClientRegex"]
    assert regex == "^(StorefrontClient)$"
    assert tokens.app_client() == tokens.AppClient("StorefrontClient", regex)


def test_minted_tokens_are_the_storefront_client_s_and_accepted():
    claims = tokens.verify(tokens.mint("customer-a", "a@example.com"))
    assert claims["aud"] == "StorefrontClient" and claims["token_use"] == "id"


@pytest.mark.parametrize(
    "claims",
    [
        _claims(token_use="id", aud="StorefrontClient"),
        _claims(aud="StorefrontClient"),  # token_use left out: an ID token
        _access("StorefrontClient"),
        _claims(),  # no aud at all: the contract lets a client sign its own token with just sub and email
    ],
    ids=["id-token", "id-token-without-token-use", "access-token", "contract-minimal-token"],
)
def test_a_token_of_the_storefront_client_is_accepted(claims):
    assert tokens.verify(_signed(claims))["sub"] == "customer-a"


@pytest.mark.parametrize(
    "claims",
    [
        _claims(token_use="id", aud="another-client"),
        _claims(token_use="id", aud="StorefrontClient2"),  # the regex matches whole ids only
        _claims(token_use="id", aud="xStorefrontClient"),
        _claims(token_use="id", aud=["StorefrontClient"]),  # not a string: no client id
        {**_claims(token_use="id"), "aud": None},  # an aud that names no client
        _claims(token_use="id", aud=""),
        _claims(token_use="id", aud="another-client", client_id="StorefrontClient"),  # an ID token's client: aud
        _access("another-client"),
        _access(None),
        _access("StorefrontClient\n"),
        {**_access("another-client"), "aud": "StorefrontClient"},  # an access token's client is its client_id
    ],
    ids=[
        "id-another-client",
        "id-longer-id",
        "id-prefixed-id",
        "id-aud-list",
        "id-aud-null",
        "id-aud-empty",
        "id-client-id-not-aud",
        "access-another-client",
        "access-no-client-id",
        "access-trailing-newline",
        "access-aud-not-client-id",
    ],
)
def test_a_validly_signed_token_of_another_client_is_refused(claims):
    with pytest.raises(tokens.InvalidToken, match="client"):
        tokens.verify(_signed(claims))


def test_a_deployment_with_an_existing_pool_accepts_its_client_only():
    client = tokens.AppClient.of(Stack({"ExistingUserPoolId": "eu-west-1_pool", "ExistingUserPoolClientId": "abc123"}))
    assert client == tokens.AppClient("abc123", "^(abc123)$")
    assert tokens.verify(tokens.mint("customer-a", "a@example.com", client=client), client)["aud"] == "abc123"
    with pytest.raises(tokens.InvalidToken, match="client"):
        tokens.verify(tokens.mint("customer-a", "a@example.com"), client)


def test_tokens_are_made_and_read_by_a_well_kept_library():
    # joserfc signs what mint makes, and reads it back with the same key, HS256 only (issue 13, part 5)
    from joserfc import jwt
    from joserfc.jwk import OctKey

    token = tokens.mint("alice", "alice@example.com", "default")
    decoded = jwt.decode(token, OctKey.import_key(tokens.secret().encode()), algorithms=["HS256"])
    assert decoded.header["alg"] == "HS256" and decoded.claims["sub"] == "alice"
    assert tokens.verify(f"Bearer {token}")["custom:site"] == "default"
    # and a token past its expiry is refused by the claims check
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(tokens.mint("alice", "alice@example.com", ttl_seconds=-10))
