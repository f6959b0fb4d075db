"""Invite addresses are validated at the edge, before any AWS call: all or nothing, every bad address named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals import emails
from referrals.config import DEFAULT_SITE
from referrals.errors import InvalidEmailAddresses, TooManyEmailAddresses
from referrals.invites import template_data, validate_addresses

ME = "me@example.com"


def test_good_addresses_pass_in_order_with_their_mailing_form():
    recipients = validate_addresses(["bob@example.org", " carol@Example.NET "], ME, 10)
    assert [r.given for r in recipients] == ["bob@example.org", " carol@Example.NET "]
    assert [r.address for r in recipients] == ["bob@example.org", "carol@example.net"]
    assert recipients[0].address_hash == emails.identity_hash("bob@example.org")


def test_addresses_that_differ_only_in_case_count_once():
    recipients = validate_addresses(["Bob@Example.org", "bob@example.org", "BOB@EXAMPLE.ORG"], ME, 10)
    assert [r.given for r in recipients] == ["Bob@Example.org"]


def test_an_internationalised_domain_is_accepted_and_mailed_as_idna():
    (recipient,) = validate_addresses(["anna@bücher.de"], ME, 10)
    assert recipient.address == "anna@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "bad",
    [
        "bob@example.org\r\nBcc: everyone@example.org",
        "bob@example.org\n",
        "\rbob@example.org",
        "bob\t@example.org",
        "bob@exam\x00ple.org",
        "bob@example.org\u2028",
        "bob@example.org\x85",
    ],
)
def test_any_control_character_refuses_the_address(bad):
    with pytest.raises(InvalidEmailAddresses) as refused:
        validate_addresses(["fine@example.org", bad], ME, 10)
    assert refused.value.info["invalidAddresses"] == [{"address": bad, "reason": "CONTROL_CHARACTERS"}]
    # The message names the address with its control characters escaped: no line break reaches a client log
    assert not emails.has_control_characters(refused.value.message)


def test_one_error_names_every_bad_address_with_its_reason():
    with pytest.raises(InvalidEmailAddresses) as refused:
        validate_addresses(["ok@example.org", "nope", "", "Me@Example.com", "a@b", "x@-bad-.com"], ME, 10)
    error = refused.value
    assert error.code == "InvalidEmailAddress"
    assert error.info["field"] == "emailAddresses"
    assert error.info["invalidAddresses"] == [
        {"address": "nope", "reason": "INVALID_FORMAT"},
        {"address": "", "reason": "EMPTY"},
        {"address": "Me@Example.com", "reason": "OWN_ADDRESS"},
        {"address": "a@b", "reason": "INVALID_DOMAIN"},
        {"address": "x@-bad-.com", "reason": "INVALID_DOMAIN"},
    ]
    for name in ['"nope"', '""', '"Me@Example.com"', '"a@b"', '"x@-bad-.com"']:
        assert name in error.message
    assert '"ok@example.org"' not in error.message


def test_the_own_address_is_recognised_as_the_same_mailbox():
    with pytest.raises(InvalidEmailAddresses) as refused:
        validate_addresses(["m.e+friends@gmail.com"], "me@googlemail.com", 10)
    assert refused.value.info["invalidAddresses"][0]["reason"] == "OWN_ADDRESS"


def test_more_distinct_addresses_than_the_limit_is_refused_and_still_names_bad_ones():
    addresses = [f"friend{i}@example.org" for i in range(11)] + ["broken"]
    with pytest.raises(TooManyEmailAddresses) as refused:
        validate_addresses(addresses, ME, 10)
    assert refused.value.code == "TooManyEmailAddresses"
    assert refused.value.info["maxAddresses"] == 10 and refused.value.info["given"] == 12
    assert refused.value.info["invalidAddresses"] == [{"address": "broken", "reason": "INVALID_FORMAT"}]


def test_duplicates_do_not_count_against_the_limit():
    addresses = [f"friend{i}@example.org" for i in range(10)] + ["FRIEND0@example.org"]
    assert len(validate_addresses(addresses, ME, 10)) == 10


def test_an_empty_list_is_nothing_to_send():
    assert validate_addresses([], ME, 10) == []


@given(st.lists(st.text(max_size=40), max_size=12))
def test_whatever_arrives_nothing_with_a_control_character_is_ever_mailed(raw):
    try:
        recipients = validate_addresses(raw, ME, 10)
    except (InvalidEmailAddresses, TooManyEmailAddresses) as refused:
        named = {p["address"] for p in refused.info["invalidAddresses"]}
        assert all(a in named for a in raw if emails.has_control_characters(a))
        return
    assert len({emails.identity_key(r.address) for r in recipients}) == len(recipients)
    for recipient in recipients:
        assert not emails.has_control_characters(recipient.address)
        assert emails.invalid_reason(recipient.address) is None


def test_template_data_strips_control_characters_from_the_name():
    data = template_data(DEFAULT_SITE, "Eve\r\nBcc: all@example.org", "ABCD2345")
    assert data["referrerName"] == "EveBcc: all@example.org"
    assert data["link"] == "https://shop.example.com/referrals.list?applyCode=ABCD2345"
    assert data["cooldownDays"] == "30"
