"""Hostile input, generated: every argument of register, customer, changeReferralCode and programmeStats. No server
error, no stack trace or internal name in any answer, and nothing written unless the input was acceptable."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devserver.stack import Stack
from referrals import storage
from tests.conftest import new_id

# What must never reach a client: stack traces, library names, resource names, source files.
LEAKS = (
    "Traceback",
    "pynamodb",
    "botocore",
    'File "',
    ".py",
    "KeyError",
    "TypeError",
    *Stack().of_type("AWS::DynamoDB::Table"),
)
REGISTER = """mutation R($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error fieldErrors { fieldName validators } newCustomer }
}"""

hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(
        ["", " ", "\r\n", "\x00", "<script>alert(1)</script>", "' OR 1=1 --", "${jndi:ldap://x}", "\u202e"]
    ),
    st.text(min_size=1000, max_size=5000),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _clean(answer: dict) -> None:
    text = json.dumps(answer)
    assert not any(leak in text for leak in LEAKS), text[:500]
    for error in answer.get("errors") or []:
        assert error["errorType"] not in {"InternalFailure"}, error


@FUZZ
@given(full_name=hostile_text, code=st.none() | hostile_text, email=st.none() | hostile_text)
def test_register_with_hostile_strings(appsync, full_name, code, email):
    me = new_id()
    variables = {"input": {"fullName": full_name, "referralCode": code, "email": email}}
    answer = appsync(REGISTER, variables, me)
    _clean(answer)
    created = (answer.get("data") or {}).get("register") or {}
    exists = storage.customer_exists(me)
    assert exists == bool(created.get("newCustomer"))
    if not exists:
        assert created.get("error") in {"INVALID_DATA", None}


@FUZZ
@given(variables=st.dictionaries(st.sampled_from(["input", "other"]), json_values, max_size=2))
def test_register_with_values_of_any_type(appsync, variables):
    me = new_id()
    answer = appsync(REGISTER, variables, me)
    _clean(answer)
    if answer.get("errors"):
        assert not storage.customer_exists(me)


@FUZZ
@given(query=st.text(max_size=200))
def test_any_query_text(appsync, query):
    _clean(appsync(query, None, new_id()))


CHANGE = """mutation C($code: String!) {
  changeReferralCode(code: $code) { customer { referralCode } error fieldErrors { fieldName validators } }
}"""
STATS = """query S($site: String!, $from: AWSDate!, $to: AWSDate!) {
  programmeStats(siteKey: $site, from: $from, to: $to) { siteKey totals { signUpsWithCode } }
}"""
SOME = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SOME
@given(code=hostile_text | st.from_regex(r"[A-Za-z0-9 ]{1,20}", fullmatch=True))
def test_change_referral_code_with_hostile_strings(appsync, code):
    from referrals import codes

    me = new_id()
    appsync(REGISTER, {"input": {"fullName": "Alice Smith"}}, me)
    before = storage.load_customer(me).code
    answer = appsync(CHANGE, {"code": code}, me)
    _clean(answer)
    outcome = answer["data"]["changeReferralCode"]
    after = storage.load_customer(me).code
    if outcome["error"] is None:  # taken only as the rules allow, and saved as they say
        assert after == codes.normalise(code) and codes.chosen_code_problem(after) is None
    else:  # anything else changes nothing
        assert outcome["error"] in {"INVALID_DATA", "CODE_TAKEN"} and after == before


@SOME
@given(variables=st.dictionaries(st.sampled_from(["code", "other"]), json_values, max_size=2))
def test_change_referral_code_with_values_of_any_type(appsync, variables):
    me = new_id()
    appsync(REGISTER, {"input": {"fullName": "Alice Smith"}}, me)
    before = storage.load_customer(me).code
    _clean(appsync(CHANGE, variables, me))
    if not isinstance(variables.get("code"), str):
        assert storage.load_customer(me).code == before


@SOME
@given(site=hostile_text, first=hostile_text | st.dates().map(str), last=hostile_text | st.dates().map(str))
def test_programme_stats_with_hostile_strings(appsync, site, first, last):
    answer = appsync(STATS, {"site": site, "from": first, "to": last}, "server", server=True)
    _clean(answer)
    for error in answer.get("errors") or []:
        assert error["errorType"] == "ValidationError", error
