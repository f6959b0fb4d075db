"""The HTTP API door's function (functions/http_api/app.py) on moto, with API Gateway payload-format-2.0 events:
each field's resolver function reached through Lambda's Invoke (devserver/lambdas.py serves it in process, with
the door's role checked as Lambda would: devserver/access.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from devserver import lambdas
from devserver.lambdas import FunctionError, LocalFunction
from referrals.config import SettingsError, load_http_door_settings
from tests.conftest import new_id

REGISTER = "mutation R($input: RegistrationInput!) { register(input: $input) { customer { referralCode } error } }"
CUSTOMER = "query { customer { referralCode referralCount } }"
OFFER = "query O($code: String!) { referralOffer(code: $code) { valid referrerFirstName } }"
EXPORT = "query E($id: ID!) { exportCustomer(customerId: $id) { account { firstName } } }"
ROUTES = {"customer": "POST /graphql", "public": "POST /public/graphql", "iam": "POST /iam/graphql"}


@pytest.fixture
def door(aws_env):
    """The stack's functions, invocable through Lambda's API; the door's function among them."""
    functions = {name: LocalFunction(spec) for name, spec in aws_env.functions().items()}
    lambdas.serve_invocations(functions)
    try:
        yield functions
    finally:
        lambdas.serve_invocations({})


def event(
    route: str,
    body: Any,
    claims: dict[str, str] | None = None,
    iam: dict[str, Any] | None = None,
    source_ip: str = "203.0.113.9",
    headers: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    if base64_encoded:
        raw = base64.b64encode(raw if isinstance(raw, bytes) else raw.encode()).decode()
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "http": {"method": "POST", "path": route.split(" ")[-1], "protocol": "HTTP/1.1", "sourceIp": source_ip},
        "requestId": new_id("request"),
        "routeKey": route,
        "stage": "$default",
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if iam is not None:
        context["authorizer"] = {"iam": iam}
    return {
        "version": "2.0",
        "routeKey": route,
        "rawPath": route.split(" ")[-1],
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": context,
        "body": raw,
        "isBase64Encoded": base64_encoded,
    }


def claims_of(sub: str) -> dict[str, str]:
    """As API Gateway's JWT authorizer hands them over: every claim a string."""
    return {"sub": sub, "email": f"{sub}@example.com", "token_use": "id", "exp": "4102444800", "iss": "local"}


# Where API Gateway sends each route (template.yaml's HttpApi events): the customer and public routes to ApiFunction,
# which resolves them in-process; the server route to HttpApiFunction. Any other reaches neither; both say Not Found.
FUNCTIONS = {ROUTES["customer"]: "ApiFunction", ROUTES["public"]: "ApiFunction", ROUTES["iam"]: "HttpApiFunction"}


def serve(functions: dict[str, LocalFunction], request: dict[str, Any], to: str | None = None) -> tuple[int, Any]:
    answer = functions[to or FUNCTIONS.get(request["routeKey"], "HttpApiFunction")].invoke(request)
    return answer["statusCode"], json.loads(answer["body"])


def register(functions, sub: str, name: str = "Alice Smith", code: str | None = None) -> str:
    variables = {"input": {"fullName": name, **({"referralCode": code} if code else {})}}
    status, body = serve(
        functions, event(ROUTES["customer"], {"query": REGISTER, "variables": variables}, claims_of(sub))
    )
    assert status == 200 and body["data"]["register"]["error"] is None, body
    return body["data"]["register"]["customer"]["referralCode"]


def test_a_customer_registers_and_reads_their_count(door):
    referrer, friend = new_id(), new_id()
    code = register(door, referrer)
    register(door, friend, "Bob Jones", code)
    status, body = serve(door, event(ROUTES["customer"], {"query": CUSTOMER}, claims_of(referrer)))
    assert (status, body) == (200, {"data": {"customer": {"referralCode": code, "referralCount": 1}}})


def test_an_access_token_is_refused_as_on_appsync(door):
    claims = {**claims_of(new_id()), "token_use": "access"}
    status, body = serve(door, event(ROUTES["customer"], {"query": CUSTOMER}, claims))
    assert status == 200 and body["errors"][0]["errorType"] == "Unauthorized"


def test_the_public_route_looks_up_a_code_and_refuses_the_rest(door):
    code = register(door, new_id(), "Olive Oyl")
    status, body = serve(door, event(ROUTES["public"], {"query": OFFER, "variables": {"code": code}}))
    assert (status, body) == (200, {"data": {"referralOffer": {"valid": True, "referrerFirstName": "Olive"}}})
    status, body = serve(door, event(ROUTES["public"], {"query": CUSTOMER}))
    assert body["data"] == {"customer": None} and body["errors"][0]["errorType"] == "Unauthorized"


def test_the_public_lookup_counts_by_the_connections_address_not_the_header(door, monkeypatch):
    # Given the resolver's view of where a lookup came from
    seen: list[str | None] = []
    from referrals import offers

    real = offers.lookup
    monkeypatch.setattr(
        offers, "lookup", lambda settings, code, source: seen.append(source) or real(settings, code, source)
    )
    forged = {"x-forwarded-for": "198.51.100.1, 198.51.100.2"}
    serve(door, event(ROUTES["public"], {"query": OFFER, "variables": {"code": "ABCD2345"}}, headers=forged))
    assert seen == ["203.0.113.9"]


def test_the_iam_route_exports_and_refuses_identity_pool_credentials(door):
    sub = new_id()
    register(door, sub)
    role = {"accountId": "123456789012", "userArn": "arn:aws:sts::123456789012:assumed-role/Privacy/s", "userId": "A:s"}
    request = {"query": EXPORT, "variables": {"id": sub}}
    status, body = serve(door, event(ROUTES["iam"], request, iam=role))
    assert (status, body) == (200, {"data": {"exportCustomer": {"account": {"firstName": "Alice"}}}})
    # credentials a shopper's browser may hold (a Cognito identity pool's) are no server's
    browser = {**role, "cognitoIdentity": {"identityPoolId": "eu-west-1:pool", "identityId": "eu-west-1:id"}}
    status, body = serve(door, event(ROUTES["iam"], request, iam=browser))
    assert body["data"] == {"exportCustomer": None} and body["errors"][0]["errorType"] == "Unauthorized"


@pytest.mark.parametrize(
    ("route", "expected"),
    [("customer", (401, {"message": "Unauthorized"})), ("iam", (403, {"message": "Forbidden"}))],
)
def test_a_route_reached_without_its_authorizers_context_is_refused(door, route, expected):
    assert serve(door, event(ROUTES[route], {"query": CUSTOMER})) == expected


@pytest.mark.parametrize("route", ["POST /", "GET /graphql", "$default", "POST /graphql/"])
@pytest.mark.parametrize("function", ["ApiFunction", "HttpApiFunction"])
def test_an_unknown_route_is_not_found(door, route, function):
    assert serve(door, event(route, {"query": CUSTOMER}), to=function) == (404, {"message": "Not Found"})


def test_each_function_serves_only_its_own_routes(door):
    # The server route's fields are not ApiFunction's to resolve, nor the customer's HttpApiFunction's
    assert serve(door, event(ROUTES["iam"], {"query": CUSTOMER}), to="ApiFunction") == (404, {"message": "Not Found"})
    request = event(ROUTES["customer"], {"query": CUSTOMER}, claims_of(new_id()))
    assert serve(door, request, to="HttpApiFunction") == (404, {"message": "Not Found"})


def test_a_base64_encoded_body_is_read(door):
    sub = new_id()
    code = register(door, sub)
    request = event(ROUTES["customer"], {"query": CUSTOMER}, claims_of(sub), base64_encoded=True)
    assert serve(door, request)[1]["data"]["customer"]["referralCode"] == code


@pytest.mark.parametrize(
    ("body", "base64_encoded", "message"),
    [
        ("{not json", False, "The body is not valid JSON"),
        ("[]", False, "Send one operation per request"),
        ("42", False, "The body must be a JSON object"),
        ("not base64!", True, "The body is not valid base64"),
        ('{"query": "' + "x" * 1_000_001 + '"}', False, "The request is larger than 1 MB"),
    ],
)
def test_bad_bodies_are_named_and_nothing_is_written(door, calls, body, base64_encoded, message):
    request = event(ROUTES["customer"], body, claims_of(new_id()))
    request["isBase64Encoded"] = base64_encoded  # the body as it is: what API Gateway would never send, too
    calls.reset()
    status, answer = serve(door, request)
    assert (status, answer) == (400, {"errors": [{"errorType": "MalformedHttpRequestException", "message": message}]})
    assert not calls.count("dynamodb") and not calls.count("lambda")


def test_a_failing_resolver_function_is_an_internal_failure_without_detail(door):
    class Failing:
        def invoke(self, event: Any) -> Any:
            raise FunctionError("KeyError", "'CustomersTable' in /var/task/app.py line 12")

    lambdas.serve_invocations({**door, "PrivacyFunction": Failing()})  # type: ignore[dict-item]
    server = {"accountId": "123456789012", "userArn": "arn:aws:sts::123456789012:assumed-role/Desk/s", "userId": "x"}
    status, body = serve(door, event(ROUTES["iam"], {"query": EXPORT, "variables": {"id": new_id()}}, iam=server))
    assert status == 200 and body["data"] == {"exportCustomer": None}
    (error,) = body["errors"]
    assert error["errorType"] == "InternalFailure" and error["message"] == "An internal error occurred"
    assert "CustomersTable" not in json.dumps(body) and "app.py" not in json.dumps(body)


def test_a_customer_request_is_one_invocation_with_no_other_function_called(door, calls):
    sub = new_id()
    register(door, sub)
    calls.reset()
    status, body = serve(door, event(ROUTES["customer"], {"query": CUSTOMER}, claims_of(sub)))
    assert status == 200 and body["data"]["customer"]["referralCode"]
    assert calls.count("lambda") == {} and calls.count("dynamodb") == {"BatchGetItem": 1}


def test_the_door_may_invoke_only_the_resolver_functions(door):
    # Its role allows lambda:InvokeFunction on the resolvers' functions and nothing else (devserver/access.py)
    from devserver import access

    role = access.role("HttpApiFunction")
    for name in ("PrivacyFunction", "ReviewFunction"):
        assert role.decide("lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:123456789012:function:{name}") == "allow"
    for name in ("ApiFunction", "ReconcileFunction", "OrderEventsFunction"):
        assert role.decide("lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:123456789012:function:{name}") != "allow"
    assert role.decide("dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/CustomersTable") != "allow"


@pytest.mark.parametrize(
    ("value", "named"),
    [(None, "is not set"), ("", "is not set"), ("{not json}", "not valid JSON"), ('{"customer": "x"}', "field names")],
)
def test_the_door_stops_at_cold_start_without_its_wiring(monkeypatch, value, named):
    if value is None:
        monkeypatch.delenv("RESOLVER_FUNCTIONS", raising=False)
    else:
        monkeypatch.setenv("RESOLVER_FUNCTIONS", value)
    with pytest.raises(SettingsError, match=named):
        load_http_door_settings()
