"""Email addresses: validation, normalisation for identity comparison, and log-safe forms."""

from __future__ import annotations

import hashlib
import re

MAX_ADDRESS_LENGTH = 254
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


def has_control_characters(value: str) -> bool:
    return any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in value)


def invalid_reason(address: str) -> str | None:
    """Why an address cannot be mailed, or None. Internationalised domains are accepted (IDNA)."""
    if has_control_characters(address):
        return "CONTROL_CHARACTERS"
    if len(address) > MAX_ADDRESS_LENGTH:
        return "TOO_LONG"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(local) > 64:
        return "INVALID_FORMAT"
    if not _LOCAL_PART.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return "INVALID_FORMAT"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "INVALID_DOMAIN"
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return "INVALID_DOMAIN"
    return None


def canonical(address: str) -> str:
    """The address as mailed: trimmed, domain lower-cased and IDNA-encoded."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii').lower()}"


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
