"""Pure domain rules: no AWS, no network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals import codes, emails
from referrals.customers import masked_name


def test_alphabet_has_no_look_alikes():
    assert not set("01OIL") & set(codes.ALPHABET)
    assert len(set(codes.ALPHABET)) == len(codes.ALPHABET) == 31


def test_new_codes_are_well_formed_and_random():
    made = {codes.new_code() for _ in range(2000)}
    assert len(made) == 2000
    assert all(codes.is_well_formed(code) for code in made)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" abcd2345 ", "ABCD2345"), ("ABCD2345", "ABCD2345"), ("", None), ("   ", None), (None, None), ("\tab\n", "AB")],
)
def test_codes_match_without_case_or_spaces(raw, expected):
    assert codes.normalise(raw) == expected


@given(st.text(max_size=20))
def test_normalise_never_fails_and_is_idempotent(raw):
    once = codes.normalise(raw)
    assert once is None or codes.normalise(once) == once


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("John.Smith+news@gmail.com", "johnsmith@gmail.com"),
        ("j.o.h.n@googlemail.com", "JOHN@gmail.com"),
        ("Anna+x@Example.com", "anna@example.com"),
    ],
)
def test_identity_key_folds_case_gmail_dots_and_tags(a, b):
    assert emails.identity_key(a) == emails.identity_key(b)
    assert emails.identity_hash(a) == emails.identity_hash(b)


def test_dots_matter_outside_gmail():
    assert emails.identity_key("a.b@example.com") != emails.identity_key("ab@example.com")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("friend@example.com", None),
        ("friend@bücher.de", None),
        ("o'brien+x@example.co.uk", None),
        ("friend@example.com\r\nBcc: victim@example.com", "CONTROL_CHARACTERS"),
        ("friend\n@example.com", "CONTROL_CHARACTERS"),
        ("no-at-sign.example.com", "INVALID_FORMAT"),
        ("a..b@example.com", "INVALID_FORMAT"),
        ("a@localhost", "INVALID_DOMAIN"),
        ("a@-bad-.com", "INVALID_DOMAIN"),
        ("x" * 250 + "@example.com", "TOO_LONG"),
        ("<script>@example.com", "INVALID_FORMAT"),
    ],
)
def test_invalid_reason(address, reason):
    assert emails.invalid_reason(address) == reason


def test_mask_keeps_no_mailbox():
    assert emails.mask("alice@example.com") == "a***@example.com"
    assert "alice" not in emails.mask("alice@example.com")


@pytest.mark.parametrize(
    ("full", "masked"), [("Alice Smith", "Alice S."), ("Cher", "Cher"), ("Jean Paul Sartre", "Jean S.")]
)
def test_friend_names_are_masked(full, masked):
    assert masked_name(full) == masked
