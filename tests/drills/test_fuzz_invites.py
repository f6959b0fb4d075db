"""Hostile input, generated: every argument of sendReferralEmail and referralOffer (and the referrer's name, the
one caller-written text that reaches a mail header). No InternalFailure and no leak in any answer; nothing sent,
no token spent and no AWS call when the input is refused; and nothing that could inject a header ever reaches
SES: each destination moto recorded is one plain `local@domain` in `ToAddresses`, nothing in Cc or Bcc.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from referrals import codes, emails, invites, storage
from referrals.errors import ReferralError
from referrals.ratelimit import invite_bucket
from tests.conftest import AWS_CALLS, new_id
from tests.drills.invite_helpers import OFFER, SEND, Env, clean, not_sent, register, ses_destinations, stack_env
from tests.drills.test_fuzz_api import hostile_text, json_values

# A site whose SES rate never limits a fuzz run: each example is about the input, not about the site's rate.
CONFIG = {"sites": {"default": {"invites": {"siteSendsPerSecond": 10_000}}}}
CUSTOMER_BUCKET = invite_bucket(20, 20)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
# What an address may look like when it reaches SES: an ASCII addr-spec, no space, quote, bracket, comma or line break
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9.-]{1,253}")
REFUSALS = {"InvalidEmailAddress", "TooManyEmailAddresses", "ValidationError"}


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with stack_env({"SitesConfig": json.dumps(CONFIG)}) as env:
        yield env


# ---------- strategies ----------

valid_address = st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,5})?(\+[a-z0-9]{1,4})?@[a-z]{2,10}\.(org|com|de)", fullmatch=True)
control = st.sampled_from(
    ["\r", "\n", "\r\n", "\x00", "\t", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]
)
injections = st.sampled_from(
    [
        "a@b.com\r\nBcc: x@y.com",
        "a@b.com\nCc: x@y.com",
        "a@b.com\rTo: x@y.com",
        "a@b.com%0d%0aBcc:x@y.com",
        "a@b.com, x@y.com",
        "a@b.com; x@y.com",
        "Eve <eve@example.org>",
        '"a\r\nb"@example.org',
        "x@y.com>\r\nBcc: z@w.com",
        "a@b.com\r\n\r\n<html>",
        "=?utf-8?q?a=0D=0ABcc:x@y.com?=@example.org",
        "a@[127.0.0.1]",
        "a@b.com\u2028Bcc: x@y.com",
        "a@b.com\x00x@y.com",
        "a@ex\u0430mple.com",
        "a@exa\u200bmple.com",
        "a@\uff45xample.com",
        "ü@example.org",
        "a@bücher.de",
        "a@xn--bcher-kva.de",
        "  a@b.com  ",
        "a@b.com\u00a0",
        "a@b.com\u3000",
        "a@b.com.",
        "@b.com",
        "a@",
        "a@-b.com",
        "a..b@c.com",
        "a@b@c.com",
        "a@b.123",
        "a" * 65 + "@b.com",
        "a@" + "b" * 250 + ".com",
        "a@" + "ü" * 60 + "." + "ö" * 60 + "." + "ä" * 60 + ".de",
    ]
)


@st.composite
def spliced(draw: st.DrawFn) -> str:
    """A good address with something hostile slipped in at any point."""
    address = draw(valid_address)
    at = draw(st.integers(0, len(address)))
    junk = draw(control | injections | st.text(max_size=4))
    return address[:at] + junk + address[at:]


hostile_address = st.one_of(
    valid_address,
    valid_address.map(str.upper),
    injections,
    spliced(),
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
)
address_lists = st.one_of(
    st.lists(hostile_address, max_size=12),
    st.lists(valid_address, min_size=1, max_size=10),
    st.lists(hostile_address, min_size=11, max_size=300),
)


# ---------- what must hold of every answer, and of what reached SES ----------


def member(env: Env, name: str = "Alice Smith") -> tuple[str, str] | None:
    me = new_id()
    email = f"{me}@example.com"
    answer = env.call(
        "mutation R($input: RegistrationInput!) { register(input: $input) { error } }",
        {"input": {"fullName": name}},
        me,
        email,
    )
    return (me, email) if answer.get("data") and answer["data"]["register"]["error"] is None else None


def tokens_spent(customer_id: str) -> int:
    try:
        tat = int(storage.BucketItem.get(f"BUCKET#CUSTOMER#{customer_id}").tat or 0)
    except storage.BucketItem.DoesNotExist:
        return 0
    return max(0, round((tat - time.time() * 1000) / CUSTOMER_BUCKET.interval_ms))


def no_injection(destinations: list[dict[str, list[str]]]) -> None:
    for destination in destinations:
        assert set(destination) == {"ToAddresses"}, destination  # no Cc, no Bcc
        (address,) = destination["ToAddresses"]
        assert PLAIN_ADDRESS.fullmatch(address), address


def expected_recipients(addresses: list, own: str) -> list[invites.Recipient] | None:
    """What the domain makes of the list (it is pure): the recipients, or None when it refuses the list."""
    try:
        return invites.validate_addresses(addresses, own, 10)
    except ReferralError:
        return None


def check_send(env: Env, me: str, email: str, addresses: list, answer: dict, before: int) -> None:
    calls = list(AWS_CALLS.calls)  # the call's own, before the checks below read anything
    types = clean(answer)
    sent = ses_destinations()[before:]
    no_injection(sent)
    mailed = [d["ToAddresses"][0] for d in sent]
    recipients = expected_recipients(addresses, email) if isinstance(addresses, list) else None
    if (answer.get("data") or {}).get("sendReferralEmail") is not True:
        # Refused: a typed refusal naming the problem, nothing sent, no token spent, no AWS call at all
        assert set(types) <= REFUSALS and types, answer
        event(f"refused: {types[0]}")
        assert mailed == [] and calls == [] and tokens_spent(me) == 0
        for error in answer["errors"]:
            assert "\r" not in error["message"] and "\n" not in error["message"]  # one line in any client's log
            for problem in (error.get("errorInfo") or {}).get("invalidAddresses", []):
                assert problem["address"] in addresses
        return
    # Accepted: exactly what the validation kept, each mailed as its canonical form, one token each
    event(f"accepted: {'some' if mailed else 'none'} mailed")
    assert recipients is not None, (addresses, answer)
    assert sorted(mailed) == sorted(r.address for r in recipients if r.given not in not_sent(answer))
    assert tokens_spent(me) == len(recipients)
    assert set(not_sent(answer).values()) <= {"RECENTLY_INVITED"}


# ---------- sendReferralEmail ----------


@FUZZ
@given(addresses=address_lists, inline=st.booleans())
def test_hostile_address_lists(env, addresses, inline):
    me, email = member(env) or pytest.fail("registration failed")
    before = len(ses_destinations())
    AWS_CALLS.reset()
    if inline:  # the list written into the query itself, escaped as a GraphQL string literal
        query = f"mutation {{ sendReferralEmail(emailAddresses: {json.dumps(addresses, ensure_ascii=False)}) }}"
        answer = env.call(query, None, me, email)
    else:
        answer = env.call(SEND, {"a": addresses}, me, email)
    check_send(env, me, email, addresses, answer, before)


@FUZZ
@given(variables=st.dictionaries(st.sampled_from(["a", "emailAddresses", "x"]), json_values, max_size=2))
def test_email_addresses_of_any_type(env, variables):
    me, email = member(env) or pytest.fail("registration failed")
    before = len(ses_destinations())
    AWS_CALLS.reset()
    answer = env.call(SEND, variables, me, email)
    given_ = variables.get("a")
    addresses = [given_] if isinstance(given_, str) else given_  # GraphQL coerces one value into a list of one
    check_send(env, me, email, addresses if isinstance(addresses, list) else [], answer, before)


@settings(FUZZ, max_examples=60)
@given(name=hostile_text | st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | injections)
def test_no_referrer_name_reaches_a_mail_header(env, name):
    from moto.ses.models import ses_backends

    from devserver.stack import ACCOUNT, REGION

    registered = member(env, name)
    assume(registered is not None)  # a name registration refuses never reaches a mail
    me, email = registered
    friend = f"pal-{new_id('f')}@example.org"
    assert env.call(SEND, {"a": [friend]}, me, email) == {"data": {"sendReferralEmail": True}}
    (message,) = [
        m
        for m in ses_backends[ACCOUNT][REGION].sent_messages
        if any(d["Destination"]["ToAddresses"] == [friend] for d in m.destinations)
    ]
    # The subject is built from referrerName: no control character, no line break, bounded
    referrer = json.loads(message.template_data)["referrerName"]
    assert not emails.has_control_characters(referrer) and 0 < len(referrer) <= invites.MAX_NAME_IN_MAIL
    assert message.source == "friends@shop.example.com"
    no_injection([d["Destination"] for d in message.destinations])


# ---------- referralOffer ----------


@pytest.fixture(scope="module")
def live_code(env) -> str:
    me = new_id()
    return register(env, me, f"{me}@example.com", "Olive Private-Lastname")


_sources = iter(range(1, 10**9))


def _fresh_source() -> str:
    """A source no other example used, so the per-source limit never hides what the lookup does."""
    n = next(_sources)
    return f"2001:db8::{n // 65536:x}:{n % 65536:x}"


def check_offer(answer: dict, code: object, live: str) -> None:
    types = clean(answer)
    assert set(types) <= {"ValidationError"}, answer
    offer = (answer.get("data") or {}).get("referralOffer")
    if offer is None:
        assert types == ["ValidationError"], answer  # refused by the schema, before any resolver ran
        event("refused: ValidationError")
        return
    event(f"valid: {offer['valid']}")
    assert "Private-Lastname" not in json.dumps(answer)  # the landing page never sees more than the first name
    if offer["valid"]:
        assert isinstance(code, str) and codes.normalise(code) == live
        assert offer == {
            "valid": True,
            "code": live,
            "referrerFirstName": "Olive",
            "siteName": "Example Shop",
            "offerText": "20% off your first order",
        }
    else:
        assert offer == {"valid": False, "code": None, "referrerFirstName": None, "siteName": None, "offerText": None}


def _near(live: str) -> st.SearchStrategy[str]:
    """The live code as a visitor might mistype, pad or poison it."""
    return st.tuples(st.integers(0, len(live)), control | st.sampled_from([" ", "  ", "-", "0", "\u00a0"])).map(
        lambda t: live[: t[0]] + t[1] + live[t[0] :]
    ) | st.sampled_from([live.lower(), f"  {live}  ", f"\t{live}\n", live + "X", live[:-1]])


@FUZZ
@given(data=st.data(), signed_in=st.booleans())
def test_hostile_codes(env, live_code, data, signed_in):
    code = data.draw(hostile_text | _near(live_code) | st.from_regex(r"[A-Za-z0-9 ]{0,12}", fullmatch=True))
    customer = new_id() if signed_in else None
    answer = env.call(OFFER, {"code": code}, customer, source_ip=_fresh_source())
    check_offer(answer, code, live_code)


@FUZZ
@given(variables=st.dictionaries(st.sampled_from(["code", "other"]), json_values, max_size=2))
def test_codes_of_any_type(env, live_code, variables):
    answer = env.call(OFFER, variables, None, source_ip=_fresh_source())
    check_offer(answer, variables.get("code"), live_code)


def test_an_address_that_looks_like_a_file_name_is_no_leak():
    # Found by the fuzzer: the answer names back what the caller wrote, `.py` and all
    from tests.drills.invite_helpers import clean

    answer = {
        "data": {"sendReferralEmail": True},
        "errors": [
            {
                "errorType": "InvitationsNotSent",
                "message": 'Some invitations were not sent: "a.py@aa.org" (RECENTLY_INVITED)',
                "errorInfo": {"notSent": [{"address": "a.py@aa.org", "reason": "RECENTLY_INVITED"}]},
            }
        ],
    }
    assert clean(answer) == ["InvitationsNotSent"]
    leaked = {**answer, "errors": [{**answer["errors"][0], "message": 'File "app.py", line 3'}]}
    with pytest.raises(AssertionError):
        clean(leaked)
