"""Email addresses: validation, normalisation for identity comparison, and log-safe forms.

Syntax and internationalised domains (IDNA 2008, UTS #46) are the `email-validator` package's, without DNS
lookups: never on a request path. It takes about 60 ms to import (its grammar is compiled at import), so it is
imported by the first call that needs it (a registration, an invite), never by the `customer` query's cold start.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

MAX_ADDRESS_LENGTH = 254
_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


def has_control_characters(value: str) -> bool:
    return any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in value)


def invalid_reason(address: str) -> str | None:
    """Why an address cannot be mailed, or None. Internationalised domains are accepted; local parts are ASCII
    (SES does not send to SMTPUTF8 mailboxes), unquoted, and domain literals are refused."""
    if has_control_characters(address):
        return "CONTROL_CHARACTERS"
    if len(address) > MAX_ADDRESS_LENGTH:
        return "TOO_LONG"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(local) > 64:
        return "INVALID_FORMAT"
    try:
        _validated(address)
    except ValueError:  # email_validator.EmailSyntaxError: which half is wrong decides the reason
        try:
            _validated(f"x@{domain}")
        except ValueError:
            return "INVALID_DOMAIN"
        return "INVALID_FORMAT"
    return None


@cache
def _validator() -> Any:
    from email_validator import validate_email

    return validate_email


def _validated(address: str) -> Any:
    return _validator()(address, check_deliverability=False, allow_smtputf8=False, globally_deliverable=True)


def canonical(address: str) -> str:
    """The address as mailed: trimmed, the domain lower-cased and IDNA-encoded (IDNA 2008)."""
    trimmed = address.strip()
    try:
        valid = _validated(trimmed)
    except ValueError:  # not an address: compared as written, domain lower-cased
        local, _, domain = trimmed.rpartition("@")
        return f"{local}@{domain.lower()}"
    return f"{valid.local_part}@{valid.ascii_domain}"


def identity_key(address: str) -> str:
    """One key per mailbox: case, Gmail dots and +tags, and googlemail.com folded."""
    local, _, domain = canonical(address).rpartition("@")
    local = local.lower().split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def identity_hash(address: str) -> str:
    """What we store and log instead of the address: a digest of its identity key."""
    return hashlib.sha256(identity_key(address).encode()).hexdigest()


def mask(address: str) -> str:
    """A log-safe hint of an address: first letter and domain only."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"
