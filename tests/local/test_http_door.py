"""The HTTP API door under /http, from outside (../shared/CONTRACT.md): one store with the AppSync door, the public
and IAM routes, and what API Gateway refuses before the function runs. The contract's cases run through both doors
in test_contract_*.py (the `door` fixture); these are what only the HTTP door has."""

from __future__ import annotations

import base64
import json

import pytest

from devserver import iam, tokens
from tests.conftest import Door, LocalApi, new_id

pytestmark = pytest.mark.http

CUSTOMER = "query { customer { customerId: referralCode referralCount } }"
REGISTER = "mutation R($input: RegistrationInput!) { register(input: $input) { customer { referralCode } error } }"
OFFER = "query Offer($code: String!) { referralOffer(code: $code) { valid referrerFirstName } }"
EXPORT = "query E($id: ID!) { exportCustomer(customerId: $id) { account { firstName } referralCode { code } } }"
ERASE = "mutation X($id: ID!) { eraseCustomer(customerId: $id) { customerId } }"
IAM_HEADERS = {iam.HEADER: iam.DEFAULT_KEY, "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}


def _post(api: LocalApi, path: str, query: str, variables: dict | None = None, headers: dict | None = None):
    return api.request("POST", path, {"query": query, "variables": variables or {}}, headers or JSON)


def _registered(door: Door, name: str = "Alice Smith") -> tuple[str, str, str]:
    """(subject, token, referral code) of a customer registered through `door`."""
    sub = new_id()
    token = tokens.mint(sub, f"{sub}@example.com")
    status, body = door.graphql(REGISTER, {"input": {"fullName": name}}, token)
    assert status == 200 and body["data"]["register"]["error"] is None, body
    return sub, token, body["data"]["register"]["customer"]["referralCode"]


@pytest.mark.parametrize(("first", "then"), [("http", "appsync"), ("appsync", "http")])
def test_a_customer_registered_through_one_door_is_the_same_through_the_other(local_api, first, then):
    _, token, code = _registered(Door(local_api, first))
    other = Door(local_api, then)
    status, body = other.graphql(CUSTOMER, token=token)
    assert status == 200 and body == {"data": {"customer": {"customerId": code, "referralCount": 0}}}
    # and a friend signing up with the code through the other door counts for the same referrer
    friend = tokens.mint(new_id(), "friend@example.com")
    status, body = other.graphql(REGISTER, {"input": {"fullName": "Bob Jones", "referralCode": code}}, friend)
    assert status == 200 and body["data"]["register"]["error"] is None
    assert Door(local_api, first).graphql(CUSTOMER, token=token)[1]["data"]["customer"]["referralCount"] == 1


def test_the_public_route_answers_the_lookup_without_credentials(local_api):
    _, _, code = _registered(Door(local_api, "http"), "Olive Oyl")
    status, body = _post(local_api, "/http/public/graphql", OFFER, {"code": code})
    assert (status, body) == (200, {"data": {"referralOffer": {"valid": True, "referrerFirstName": "Olive"}}})


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        (CUSTOMER, {}, "customer"),
        (REGISTER, {"input": {"fullName": "Mallory"}}, "register"),
        (EXPORT, {"id": "someone"}, "exportCustomer"),
        (ERASE, {"id": "someone"}, "eraseCustomer"),
    ],
)
def test_the_public_route_refuses_every_other_field(local_api, query, variables, field):
    status, body = _post(local_api, "/http/public/graphql", query, variables)
    # a non-null field's null makes `data` null, as in AppSync
    assert status == 200 and body["data"] in ({field: None}, None)
    (error,) = body["errors"]
    assert error["errorType"] == "Unauthorized" and error["path"] == [field]


def test_the_iam_route_serves_the_server_fields_with_the_local_iam_header(local_api):
    sub, _, code = _registered(Door(local_api, "http"))
    status, body = _post(local_api, "/http/iam/graphql", EXPORT, {"id": sub}, IAM_HEADERS)
    expected = {"account": {"firstName": "Alice"}, "referralCode": {"code": code}}
    assert status == 200 and body == {"data": {"exportCustomer": expected}}
    # the same request through AppSync's door gives the same answer
    assert _post(local_api, "/graphql", EXPORT, {"id": sub}, IAM_HEADERS) == (status, body)


def test_the_iam_route_refuses_customer_fields(local_api):
    status, body = _post(local_api, "/http/iam/graphql", CUSTOMER, {}, IAM_HEADERS)
    assert status == 200 and body["data"] == {"customer": None}
    assert body["errors"][0]["errorType"] == "Unauthorized"


@pytest.mark.parametrize(
    "headers",
    [JSON, {**JSON, iam.HEADER: "not-the-key"}, {**JSON, iam.HEADER: ""}, {**JSON, "Authorization": "Bearer x"}],
    ids=["unsigned", "wrong-key", "empty-key", "a-token-instead"],
)
def test_an_unsigned_or_badly_signed_iam_request_is_forbidden_before_the_function(local_api, headers):
    sub, _, _ = _registered(Door(local_api, "http"))
    status, body = _post(local_api, "/http/iam/graphql", ERASE, {"id": sub}, headers)
    assert (status, body) == (403, {"message": "Forbidden"})
    # nothing was erased
    _, export = _post(local_api, "/http/iam/graphql", EXPORT, {"id": sub}, IAM_HEADERS)
    assert export["data"]["exportCustomer"]["account"] == {"firstName": "Alice"}


def test_the_customer_route_takes_no_iam_header_in_place_of_a_token(local_api):
    status, body = _post(local_api, "/http/graphql", CUSTOMER, {}, IAM_HEADERS)
    assert (status, body) == (401, {"message": "Unauthorized"})


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/http/nope"), ("POST", "/http/graphql/extra"), ("GET", "/http/graphql"), ("POST", "/http/")],
)
def test_unknown_routes_answer_as_api_gateway(local_api, method, path):
    body = None if method == "GET" else {"query": CUSTOMER}
    assert local_api.request(method, path, body, JSON) == (404, {"message": "Not Found"})


def test_a_body_api_gateway_base64_encodes_is_read(local_api):
    # Given a body of a content type API Gateway passes base64-encoded (not text)
    _, token, code = _registered(Door(local_api, "http"))
    raw = json.dumps({"query": CUSTOMER}).encode()
    headers = {"Content-Type": "application/octet-stream", "Authorization": f"Bearer {token}"}
    status, body = local_api.request("POST", "/http/graphql", raw, headers)
    assert status == 200 and body["data"]["customer"]["customerId"] == code


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "The body is not valid JSON"),
        (b"null", "The body must be a JSON object"),
        (b'"query"', "The body must be a JSON object"),
        (b'[{"query": "{ customer { referralCode } }"}]', "Send one operation per request"),
        (b'{"query": "' + b"x" * 1_100_000 + b'"}', "The request is larger than 1 MB"),
        (b"\xff\xfe\x00", "The body is not valid JSON"),
    ],
    ids=["malformed", "null", "string", "batch", "over-1-MB", "not-utf8"],
)
def test_bad_bodies_get_a_named_400_and_write_nothing(local_api, raw, message):
    sub = new_id()
    token = tokens.mint(sub, f"{sub}@example.com")
    status, body = Door(local_api, "http").send(raw, token)
    assert status == 400
    assert body == {"errors": [{"errorType": "MalformedHttpRequestException", "message": message}]}
    assert Door(local_api, "http").graphql(CUSTOMER, token=token)[1] == {"data": {"customer": None}}


def test_a_body_over_api_gateways_limit_is_refused_before_the_function(local_api):
    raw = b'{"query": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    status, body = local_api.request("POST", "/http/public/graphql", raw, JSON)
    assert (status, body) == (413, {"message": "Request Entity Too Large"})


def test_the_http_door_keeps_appsyncs_limits(local_api):
    _, token, _ = _registered(Door(local_api, "http"))
    door = Door(local_api, "http")
    # introspection is off unless the template's Introspection parameter turns it on
    status, body = door.graphql("{ __schema { types { name } } }", token=token)
    assert status == 200 and body["data"] is None and body["errors"][0]["errorType"] == "ValidationError"
    # at most 50 resolvers a request (ResolverCountLimit)
    many = " ".join(f"c{i}: customer {{ referralCount }}" for i in range(51))
    status, body = door.graphql(f"{{ {many} }}", token=token)
    assert status == 200
    assert [e["errorType"] for e in body["errors"]] == ["ResolverCountLimitExceeded"]


def test_no_stack_trace_reaches_a_client_of_the_http_door(local_api):
    raw = base64.b64encode(b"\x00" * 64)
    status, body = local_api.request("POST", "/http/public/graphql", raw, {"Content-Type": "image/png"})
    assert status == 400
    for leak in ("Traceback", "botocore", ".py", "HttpApiFunction"):
        assert leak not in json.dumps(body)
