"""Referral codes: short, random, easy to read aloud; no look-alike characters (0/O, 1/I/L)."""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
MAX_INPUT_LENGTH = 64


def new_code() -> str:
    """A uniformly random code, not derived from any id or sequence."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(raw: str | None) -> str | None:
    """The code a customer meant: case and surrounding spaces ignored; None when blank."""
    if raw is None:
        return None
    code = raw.strip().upper()
    return code or None


def is_well_formed(code: str) -> bool:
    return len(code) == LENGTH and all(c in ALPHABET for c in code)
