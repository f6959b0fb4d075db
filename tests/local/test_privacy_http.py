"""Erasure and export from outside: `python -m devserver` over HTTP, with the local IAM stand-in (header
`x-local-iam`, docs/local.md) and a CustomerDeleted event through `/_local/events` (docs/privacy.md)."""

from __future__ import annotations

import json

import pytest

from devserver import iam, tokens
from tests.conftest import new_id

pytestmark = pytest.mark.http

REGISTER = """mutation Register($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error newCustomer }
}"""
ERASE = "mutation E($id: ID!) { eraseCustomer(customerId: $id) { customerId erasedAt erased } }"
EXPORT = """query X($id: ID!) {
  exportCustomer(customerId: $id) {
    customerId
    account { site firstName emailHash }
    referralCode { code status }
    referralCount
    referredBy { code status friendName orderEvents { orderId kind amount currency } }
    referralsMade { items { status friendName } total nextToken }
    invites { sent periodDays }
  }
}"""
MINE = "{ customer { referralCount referrals { items { friendName status } total } } }"


def _as_server(api, query: str, variables: dict, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", iam.HEADER: key or iam.DEFAULT_KEY}
    return api.request("POST", "/graphql", {"query": query, "variables": variables}, headers)


def _register(api, sub: str, name: str, code: str | None = None) -> str:
    variables = {"input": {"fullName": name, **({"referralCode": code} if code else {})}}
    status, body = api.graphql(REGISTER, variables, tokens.mint(sub, f"{sub}@example.com"))
    assert status == 200 and body["data"]["register"]["newCustomer"] is True, body
    return body["data"]["register"]["customer"]["referralCode"]


def _pair(api) -> tuple[str, str, str]:
    referrer, friend = new_id("alice"), new_id("bob")
    code = _register(api, referrer, "Alice Smith")
    _register(api, friend, "Bob Jones", code)
    return referrer, friend, code


def test_a_server_exports_and_erases_a_friend_and_the_referrer_keeps_the_count(local_api):
    # Given a referrer and a friend who signed up with the code
    referrer, friend, code = _pair(local_api)
    # When a server (IAM) exports the friend's data
    status, body = _as_server(local_api, EXPORT, {"id": friend})
    # Then it is theirs
    assert status == 200 and "errors" not in body, body
    exported = body["data"]["exportCustomer"]
    assert exported["account"]["firstName"] == "Bob" and exported["account"]["site"] == "default"
    assert exported["referredBy"] == {"code": code, "status": "REGISTERED", "friendName": "Bob J.", "orderEvents": []}
    # When it erases them, twice
    status, first = _as_server(local_api, ERASE, {"id": friend})
    status_again, second = _as_server(local_api, ERASE, {"id": friend})
    # Then the first erases, the second finds nothing left
    assert status == status_again == 200
    assert first["data"]["eraseCustomer"]["erased"] == ["ACCOUNT", "REFERRAL_CODE", "REFERRAL_COUNT", "FRIEND_NAME"]
    assert second["data"]["eraseCustomer"]["erased"] == []
    # And the referrer still counts them, now shown as a former customer
    _, mine = local_api.graphql(MINE, None, tokens.mint(referrer, f"{referrer}@example.com"))
    assert mine["data"]["customer"]["referralCount"] == 1
    assert mine["data"]["customer"]["referrals"]["items"] == [{"friendName": "Former customer", "status": "REGISTERED"}]
    # And the friend's token finds no account
    _, theirs = local_api.graphql(MINE, None, tokens.mint(friend, f"{friend}@example.com"))
    assert theirs["data"]["customer"] is None


def test_a_customer_token_may_not_erase_anyone_not_even_itself(local_api):
    # Given a customer
    me = new_id()
    _register(local_api, me, "Carol Smith")
    # When their own token asks to erase them, or to export them
    token = tokens.mint(me, f"{me}@example.com")
    status, erase = local_api.graphql(ERASE, {"id": me}, token)
    _, export = local_api.graphql(EXPORT, {"id": me}, token)
    # Then AppSync's authorization refuses both fields, and nothing is erased
    assert status == 200 and erase["data"] == {"eraseCustomer": None}
    assert erase["errors"][0]["errorType"] == "Unauthorized" and erase["errors"][0]["path"] == ["eraseCustomer"]
    assert export["data"] == {"exportCustomer": None} and export["errors"][0]["errorType"] == "Unauthorized"
    _, found = _as_server(local_api, EXPORT, {"id": me})
    assert found["data"]["exportCustomer"]["account"]["firstName"] == "Carol"


def test_an_api_key_may_not_erase(local_api):
    headers = {"Content-Type": "application/json", "x-api-key": "local-api-key"}
    status, body = local_api.request("POST", "/graphql", {"query": ERASE, "variables": {"id": "x"}}, headers)
    assert status == 200 and body["data"] == {"eraseCustomer": None}
    assert body["errors"][0]["errorType"] == "Unauthorized"


def test_an_iam_caller_may_call_only_iam_fields(local_api):
    # When a server asks for the shopper's own fields
    _, body = _as_server(local_api, "{ customer { referralCode } }", {})
    # Then they are refused (a server is nobody's customer)
    assert body["data"] == {"customer": None} and body["errors"][0]["errorType"] == "Unauthorized"


def test_a_wrong_iam_key_is_refused_as_a_bad_signature(local_api):
    # Even with a valid customer token beside it: a request that claims IAM and fails it is refused
    headers = {
        "Content-Type": "application/json",
        iam.HEADER: "not-the-key",
        "Authorization": tokens.mint(new_id(), "x@example.com"),
    }
    status, body = local_api.request("POST", "/graphql", {"query": ERASE, "variables": {"id": "x"}}, headers)
    assert status == 401 and body["errors"][0]["errorType"] == "UnauthorizedException" and "data" not in body


def test_a_bad_customer_id_names_the_field(local_api):
    _, body = _as_server(local_api, ERASE, {"id": "a\nb"})
    assert body["data"] == {"eraseCustomer": None}
    assert body["errors"][0]["errorType"] == "ValidationError"
    assert body["errors"][0]["errorInfo"] == {"field": "customerId", "reason": "INVALID_CHARACTERS"}


def test_customer_deleted_through_local_events_erases(local_api):
    # Given a referrer and a friend
    referrer, _, code = _pair(local_api)
    # When the commerce system says the referrer was deleted
    entry = {
        "Source": "commerce.customers",
        "DetailType": "CustomerDeleted",
        "Detail": json.dumps({"customerId": referrer}),
    }
    status, put = local_api.request("POST", "/_local/events", {"Entries": [entry]})
    assert status == 200 and put["FailedEntryCount"] == 0
    # Then (delivered before the answer) the account is gone and its code refuses new friends
    _, found = _as_server(local_api, EXPORT, {"id": referrer})
    exported = found["data"]["exportCustomer"]
    assert exported["account"] is None and exported["referralCode"] is None
    assert exported["referralsMade"]["items"] == [{"status": "REGISTERED", "friendName": "Bob J."}]
    lookup = {"query": "query O($c: String!) { referralOffer(code: $c) { valid } }", "variables": {"c": code}}
    headers = {"Content-Type": "application/json", "x-api-key": "local-api-key"}
    _, offer = local_api.request("POST", "/graphql", lookup, headers)
    assert offer["data"]["referralOffer"] == {"valid": False}


def test_a_malformed_customer_event_is_dead_lettered(local_api):
    entry = {"Source": "commerce.customers", "DetailType": "CustomerDeleted", "Detail": json.dumps({"who": "?"})}
    status, put = local_api.request("POST", "/_local/events", {"Entries": [entry]})
    assert status == 200 and put["FailedEntryCount"] == 0
    _, letters = local_api.request("GET", "/_local/dead-letters")
    mine = [d for d in letters if d["queue"] == "CustomerEventsDeadLetterQueue"]
    assert any(d["body"]["detail"] == {"who": "?"} and d["attributes"]["Reason"] == "MALFORMED" for d in mine)
