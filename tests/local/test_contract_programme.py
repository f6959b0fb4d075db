"""The contract's "Programme features", from outside: the second site, cross-site referrals, vanity codes and the
programme's figures, over HTTP against `python -m devserver` with its default sites (no REFERRALS_CONFIG)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from devserver import iam, pages, tokens
from tests.conftest import new_id

pytestmark = pytest.mark.http

REGISTER = """mutation R($input: RegistrationInput!) {
  register(input: $input) {
    customer { referralCode referralCount referralLink referralCounts { count siteKey } }
    error fieldErrors { fieldName validators } newCustomer
  }
}"""
CUSTOMER = "{ customer { referralCode referralCount referralCounts { count siteKey } } }"
CHANGE = """mutation C($code: String!) {
  changeReferralCode(code: $code) {
    customer { referralCode referralCount }
    error fieldErrors { fieldName validators }
  }
}"""
OFFER = "query O($code: String!) { referralOffer(code: $code) { valid code referrerFirstName siteName } }"
STATS = """query S($site: String!, $from: AWSDate!, $to: AWSDate!) {
  programmeStats(siteKey: $site, from: $from, to: $to) {
    siteKey
    days { date figures { signUpsWithCode offerLookups invitesSent } }
    totals { invitesSent offerLookups signUpsWithCode firstQualifyingOrders rewardsEarned rewardsReversed }
  }
}"""


def _token(sub: str, site: str = "default") -> str:
    return tokens.mint(sub, f"{sub}@example.com", site)


def _register(api, sub: str, site: str = "default", code: str | None = None, name: str = "Alice Smith") -> dict:
    variables = {"input": {"fullName": name, **({"referralCode": code} if code else {})}}
    status, body = api.graphql(REGISTER, variables, _token(sub, site))
    assert status == 200, body
    return body["data"]["register"]


def _change(api, sub: str, code: str, site: str = "default") -> dict:
    status, body = api.graphql(CHANGE, {"code": code}, _token(sub, site))
    assert status == 200, body
    return body["data"]["changeReferralCode"]


def _as_server(api, query: str, variables: dict) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", iam.HEADER: iam.DEFAULT_KEY}
    return api.request("POST", "/graphql", {"query": query, "variables": variables}, headers)


def _today_totals(api, site: str = "default") -> dict:
    today = datetime.now(UTC).date().isoformat()
    status, body = _as_server(api, STATS, {"site": site, "from": today, "to": today})
    assert status == 200 and "errors" not in body, body
    return body["data"]["programmeStats"]["totals"]


# ---------- sites and groups ----------


def test_the_second_site_de_is_served_and_grouped_with_default(local_api):
    answer = _register(local_api, new_id(), "de")
    assert answer["newCustomer"] is True
    customer = answer["customer"]
    assert customer["referralLink"].startswith("https://shop.example.de/referrals.list?applyCode=")
    assert customer["referralCounts"] == [{"count": 0, "siteKey": "de"}, {"count": 0, "siteKey": "default"}]


def test_a_friend_on_de_signs_up_with_a_default_code_and_is_counted_once_on_de(local_api):
    referrer = new_id()
    code = _register(local_api, referrer)["customer"]["referralCode"]
    answer = _register(local_api, new_id(), "de", code, "Fritz Freund")
    assert answer["error"] is None and answer["newCustomer"] is True
    _register(local_api, new_id(), "default", code, "Fran Friend")
    _, body = local_api.graphql(CUSTOMER, None, _token(referrer))
    assert body["data"]["customer"]["referralCounts"] == [
        {"count": 1, "siteKey": "de"},
        {"count": 1, "siteKey": "default"},
    ]
    assert body["data"]["customer"]["referralCount"] == 2


def test_a_de_customer_sees_the_site_of_their_token_only(local_api):
    # An account lives on one site: the same identity asking on the other site has none there
    me = new_id()
    _register(local_api, me, "de")
    assert local_api.graphql(CUSTOMER, None, _token(me, "default"))[1]["data"]["customer"] is None


# ---------- vanity codes ----------


def test_a_chosen_code_replaces_the_shown_one_and_the_old_one_keeps_working(local_api):
    me = new_id()
    old = _register(local_api, me)["customer"]["referralCode"]
    vanity = f"V{new_id()[-8:].upper().replace('-', '')}"[:12]
    answer = _change(local_api, me, f"  {vanity.lower()} ")
    assert answer == {"customer": {"referralCode": vanity, "referralCount": 0}, "error": None, "fieldErrors": []}
    for code in (old, vanity):
        assert _register(local_api, new_id(), code=code, name="Fran Friend")["error"] is None
        _, body = local_api.request(
            "POST",
            "/graphql",
            {"query": OFFER, "variables": {"code": code}},
            {"Content-Type": "application/json", "x-api-key": pages.api_key()},
        )
        assert (
            body["data"]["referralOffer"]["valid"] is True
            and body["data"]["referralOffer"]["referrerFirstName"] == "Alice"
        )
    assert local_api.graphql(CUSTOMER, None, _token(me))[1]["data"]["customer"]["referralCount"] == 2


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("ab", "BADLY_FORMED"),
        ("A" * 17, "BADLY_FORMED"),
        ("AB CD", "BADLY_FORMED"),
        ("ADMIN", "RESERVED"),
        ("SH1T99", "OFFENSIVE"),
    ],
)
def test_a_refused_code_is_invalid_data_naming_why(local_api, code, reason):
    me = new_id()
    before = _register(local_api, me)["customer"]["referralCode"]
    answer = _change(local_api, me, code)
    assert answer == {
        "customer": None,
        "error": "INVALID_DATA",
        "fieldErrors": [{"fieldName": "code", "validators": [reason]}],
    }
    assert local_api.graphql(CUSTOMER, None, _token(me))[1]["data"]["customer"]["referralCode"] == before


def test_taken_too_soon_and_no_account(local_api):
    alice, bob = new_id(), new_id()
    _register(local_api, alice)
    bob_code = _register(local_api, bob)["customer"]["referralCode"]
    code = f"T{new_id()[-10:].upper().replace('-', '')}"[:10]
    assert _change(local_api, alice, code)["error"] is None
    # Look-alikes are one code: O for 0, L and I for 1
    look_alike = code.replace("0", "O").replace("1", "L")
    assert _change(local_api, bob, look_alike)["error"] == "CODE_TAKEN"
    assert _change(local_api, alice, f"X{code}"[:16])["error"] == "TOO_SOON"
    assert _change(local_api, new_id(), "NOBODY42")["error"] == "NO_ACCOUNT"
    assert local_api.graphql(CUSTOMER, None, _token(bob))[1]["data"]["customer"]["referralCode"] == bob_code


def test_of_many_customers_taking_one_code_at_once_exactly_one_wins(local_api):
    people = [new_id() for _ in range(8)]
    for me in people:
        _register(local_api, me)
    code = f"W{new_id()[-10:].upper().replace('-', '')}"[:12]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda me: _change(local_api, me, code), people))
    assert sorted(str(a["error"]) for a in answers) == ["CODE_TAKEN"] * 7 + ["None"]


# ---------- programme figures ----------


def test_programme_stats_counts_sign_ups_and_lookups_exactly(local_api):
    before = _today_totals(local_api)
    code = _register(local_api, new_id())["customer"]["referralCode"]
    _register(local_api, new_id(), code=code, name="Fran Friend")
    _register(local_api, new_id(), "de", code, "Fritz Freund")  # counted on de, where the friend signed up
    local_api.request(
        "POST",
        "/graphql",
        {"query": OFFER, "variables": {"code": code}},
        {"Content-Type": "application/json", "x-api-key": pages.api_key()},
    )
    after = _today_totals(local_api)
    assert after["signUpsWithCode"] - before["signUpsWithCode"] == 1
    assert after["offerLookups"] - before["offerLookups"] == 1


def test_programme_stats_is_for_iam_callers_only(local_api):
    today = datetime.now(UTC).date().isoformat()
    variables = {"site": "default", "from": today, "to": today}
    me = new_id()
    _register(local_api, me)
    _, body = local_api.graphql(STATS, variables, _token(me))
    assert body["data"] == {"programmeStats": None}
    assert body["errors"][0]["errorType"] == "Unauthorized"
    _, body = local_api.request(
        "POST",
        "/graphql",
        {"query": STATS, "variables": variables},
        {"Content-Type": "application/json", "x-api-key": pages.api_key()},
    )
    assert body["errors"][0]["errorType"] == "Unauthorized"


def test_programme_stats_refuses_a_bad_range_by_name(local_api):
    _, body = _as_server(local_api, STATS, {"site": "default", "from": "2026-02-02", "to": "2026-02-01"})
    assert body["errors"][0]["errorType"] == "ValidationError"
    assert body["errors"][0]["errorInfo"] == {"field": "to", "reason": "BEFORE_FROM"}
