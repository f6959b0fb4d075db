"""The local contract, from outside: `python -m devserver` over HTTP, as a storefront would call it."""

from __future__ import annotations

import base64
import json
import time

import pytest

from devserver import tokens
from tests.conftest import new_id

pytestmark = pytest.mark.http

CUSTOMER = "query { customer { referralCode referralCount referralLink socialReferralMethods { type url } } }"
REGISTER = """mutation Register($input: RegistrationInput!) {
  register(input: $input) {
    customer { referralCode referralCount referralLink }
    error
    fieldErrors { fieldName validators }
    newCustomer
  }
}"""


def token(sub: str | None = None, email: str = "shopper@example.com", site: str | None = None) -> str:
    return tokens.mint(sub or new_id(), email, site)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_health(local_api):
    assert local_api.request("GET", "/_local/health")[0] == 200


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "not-a-jwt",
        tokens.mint("x", "x@example.com", key="another-secret"),
        tokens.mint("x", "x@example.com", ttl_seconds=-10),
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'x', 'email': 'x@e.com'})}.",
    ],
    ids=["missing", "empty", "garbage", "forged", "expired", "alg-none"],
)
def test_without_a_valid_token_every_call_is_refused(door, bad):
    status, body = door.graphql(CUSTOMER, token=bad)
    assert door.refused(status, body), body


def test_tampered_site_claim_is_refused(door):
    good = token(site="default")
    header, _, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    claims["custom:site"] = "other"
    status, _ = door.graphql(CUSTOMER, token=f"{header}.{_b64(claims)}.{signature}")
    assert status == 401


def test_register_then_customer_with_bearer_prefix(door):
    me = token()
    status, body = door.graphql(REGISTER, {"input": {"fullName": "Sam Shopper"}}, token=f"Bearer {me}")
    assert status == 200 and "errors" not in body
    answer = body["data"]["register"]
    assert answer["error"] is None and answer["newCustomer"] is True
    code = answer["customer"]["referralCode"]
    _, view = door.graphql(CUSTOMER, token=me)
    customer = view["data"]["customer"]
    assert customer["referralCode"] == code and customer["referralCount"] == 0
    assert customer["referralLink"] == f"https://shop.example.com/referrals.list?applyCode={code}"
    methods = {m["type"]: m["url"] for m in customer["socialReferralMethods"]}
    assert "EMAIL" in methods and all("applyCode%3D" + code in url for url in methods.values())


def test_customer_is_null_before_registering(door):
    assert door.graphql(CUSTOMER, token=token()) == (200, {"data": {"customer": None}})


def test_friend_links_with_a_code_in_any_case(door):
    referrer = token()
    code = door.graphql(REGISTER, {"input": {"fullName": "Ref"}}, referrer)[1]["data"]["register"]["customer"][
        "referralCode"
    ]
    _, body = door.graphql(REGISTER, {"input": {"fullName": "Friend", "referralCode": f"  {code.lower()}  "}}, token())
    assert body["data"]["register"]["newCustomer"] is True
    assert door.graphql(CUSTOMER, token=referrer)[1]["data"]["customer"]["referralCount"] == 1


def test_unknown_code_and_account_exists(door):
    me = token()
    _, body = door.graphql(REGISTER, {"input": {"fullName": "F", "referralCode": "QQQQ2222"}}, me)
    assert "errors" not in body
    assert body["data"]["register"] == {
        "customer": None,
        "error": "INVALID_DATA",
        "fieldErrors": [{"fieldName": "referralCode", "validators": ["REFERRAL_CODE_NOT_FOUND"]}],
        "newCustomer": False,
    }
    assert door.graphql(CUSTOMER, token=me)[1]["data"]["customer"] is None
    door.graphql(REGISTER, {"input": {"fullName": "F"}}, me)
    _, again = door.graphql(REGISTER, {"input": {"fullName": "F", "referralCode": "QQQQ2222"}}, me)
    assert again["data"]["register"]["error"] == "ACCOUNT_EXISTS"


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"input": {}},
        {"input": {"fullName": 123}},
        {"input": {"fullName": ["a"]}},
        {"input": "x"},
        {"input": {"fullName": "A", "referralCode": 7}},
    ],
)
def test_wrong_types_get_a_validation_error_and_write_nothing(door, variables):
    me = token()
    status, body = door.graphql(REGISTER, variables, me)
    assert status == 200 and body["data"] is None
    assert body["errors"][0]["errorType"] == "ValidationError" and "input" in body["errors"][0]["message"]
    assert door.graphql(CUSTOMER, token=me)[1]["data"]["customer"] is None


def test_huge_and_malformed_requests_are_refused_cleanly(door):
    me = token()
    status, body = door.send(b'{"query": "' + b"x" * 1_100_000 + b'"}', me)
    assert status == 400 and body["errors"][0]["errorType"] == "MalformedHttpRequestException"
    status, body = door.send(b"{not json", me)
    assert status == 400 and body["errors"][0]["errorType"] == "MalformedHttpRequestException"
    status, body = door.send(b'[{"query": "{ customer { referralCode } }"}]', me)
    assert status == 400 and body["errors"][0]["message"] == "Send one operation per request"
    status, body = door.graphql("query { nope }", token=me)
    assert body["errors"][0]["errorType"] == "ValidationError"
    status, body = door.graphql("{ customer { referralCode ", token=me)
    assert body["errors"][0]["errorType"] == "ParseError"


def test_long_name_with_control_characters_is_a_field_error(door):
    me = token()
    _, body = door.graphql(REGISTER, {"input": {"fullName": "Eve\r\nInjected: yes"}}, me)
    assert body["data"]["register"]["fieldErrors"] == [{"fieldName": "fullName", "validators": ["INVALID_CHARACTERS"]}]
    _, body = door.graphql(REGISTER, {"input": {"fullName": "N" * 100_000}}, me)
    assert body["data"]["register"]["fieldErrors"] == [{"fieldName": "fullName", "validators": ["MAX_LENGTH"]}]


def test_no_stack_trace_or_internal_name_reaches_a_client(door):
    _, body = door.graphql(REGISTER, {"input": {"fullName": "\x00" * 50, "referralCode": "\u202e" * 10}}, token())
    text = json.dumps(body)
    for leak in ("Traceback", "pynamodb", "CustomersTable", "botocore", ".py"):
        assert leak not in text


def test_functions_are_listed_from_the_template(local_api):
    status, functions = local_api.request("GET", "/_local/functions")
    assert status == 200
    by_id = {f["logicalId"]: f for f in functions}
    assert "ApiFunction" in by_id and isinstance(by_id["ApiFunction"]["events"], list)


def test_invoke_runs_a_handler_as_sam_local_would(local_api):
    with open("events/register.json") as sample:
        event = json.load(sample)
    event["identity"]["sub"] = event["identity"]["claims"]["sub"] = new_id()
    status, answer = local_api.request("POST", "/_local/invoke/ApiFunction", event)
    assert status == 200 and answer["data"]["newCustomer"] is True
    status, answer = local_api.request("POST", "/_local/invoke/ApiFunction", {"not": "an appsync event"})
    assert status in (200, 502)
    if status == 502:
        assert set(answer) == {"errorType", "errorMessage"}
    assert local_api.request("POST", "/_local/invoke/NoSuchFunction", {})[0] == 404


def test_token_endpoint_mints_a_usable_token(door):
    status, body = door.request("POST", "/_local/token", {"sub": new_id(), "email": "t@example.com"})
    assert status == 200
    assert door.graphql(CUSTOMER, token=body["token"])[0] == 200


def test_concurrent_registrations_over_http(door):
    from concurrent.futures import ThreadPoolExecutor

    referrer = token()
    code = door.graphql(REGISTER, {"input": {"fullName": "Ref"}}, referrer)[1]["data"]["register"]["customer"][
        "referralCode"
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda _: door.graphql(REGISTER, {"input": {"fullName": "F", "referralCode": code}}, token()),
                range(24),
            )
        )
    assert all(a[1]["data"]["register"]["newCustomer"] for a in answers)
    assert door.graphql(CUSTOMER, token=referrer)[1]["data"]["customer"]["referralCount"] == 24
    assert time.monotonic() - started < 60
