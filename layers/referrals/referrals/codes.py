"""Referral codes: the ones we issue (short, random, no look-alike characters) and the ones customers choose.

A code is matched without regard to case or surrounding spaces, and codes that differ only by look-alike
characters (0 and O; 1, I and L) are one code: `key` is what both taking and matching compare, and what a code's
item is stored under. Issued codes hold none of those characters, so an issued code is its own key.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from functools import cache

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
MAX_INPUT_LENGTH = 64
MIN_CHOSEN, MAX_CHOSEN = 4, 16
# Earlier codes a customer may hold (aliases): erasure disables every code in one transaction (docs/privacy.md),
# and a customer may not hoard codes.
MAX_EARLIER_CODES = 15
_WELL_FORMED = re.compile(rf"[A-Z0-9]{{{MIN_CHOSEN},{MAX_CHOSEN}}}")
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Words a code may not be (with any digits after): they would pass for the shop speaking, or for a system's word.
RESERVED = frozenset(
    [
        "ACCOUNT",
        "ADMIN",
        "ADMINISTRATOR",
        "BILLING",
        "BONUS",
        "CASHBACK",
        "COUPON",
        "CUSTOMER",
        "DISCOUNT",
        "EMPLOYEE",
        "FREE",
        "GIFT",
        "GIFTCARD",
        "HELP",
        "HELPDESK",
        "INVALID",
        "MODERATOR",
        "NONE",
        "NULL",
        "OFFICIAL",
        "OFFER",
        "ORDER",
        "PAYMENT",
        "PROMO",
        "PROMOTION",
        "REFERRAL",
        "REFERRALS",
        "REFUND",
        "ROOT",
        "SALE",
        "SECURITY",
        "SERVICE",
        "SHOP",
        "STAFF",
        "STORE",
        "SUPPORT",
        "SYSTEM",
        "TEST",
        "UNDEFINED",
        "VOUCHER",
        "WELCOME",
    ]
)
# Offensive words this long or longer are refused anywhere inside a code; shorter ones only as the whole code
# (with digits after): "ANAL" must not refuse "CANAL2024" (the Scunthorpe problem).
_OFFENSIVE_INSIDE = 5


class CodeProblem(StrEnum):
    BADLY_FORMED = "BADLY_FORMED"
    RESERVED = "RESERVED"
    OFFENSIVE = "OFFENSIVE"


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
    """A normalised code that could exist: issued or chosen (4 to 16 ASCII letters and digits)."""
    return bool(_WELL_FORMED.fullmatch(code))


def key(code: str) -> str:
    """What a (normalised) code is stored and matched under: look-alike characters made one."""
    return code.translate(_LOOK_ALIKES)


def chosen_code_problem(code: str) -> CodeProblem | None:
    """Why a customer may not choose this (normalised) code, or None."""
    if not is_well_formed(code):
        return CodeProblem.BADLY_FORMED
    word = key(code.rstrip("0123456789"))
    if word in _reserved_keys():
        return CodeProblem.RESERVED
    whole = key(code)
    offensive = _offensive_keys()
    if word in offensive or any(len(bad) >= _OFFENSIVE_INSIDE and bad in whole for bad in offensive):
        return CodeProblem.OFFENSIVE
    return None


@cache
def _reserved_keys() -> frozenset[str]:
    return frozenset(key(word) for word in RESERVED)


@cache
def _offensive_keys() -> frozenset[str]:
    """better-profanity's English word list (pure data: its module is never imported), as keys: letters and digits
    only, so "b00bs" and "boobs" are one entry, as they are one code."""
    from importlib.util import find_spec
    from pathlib import Path

    # Found, not imported: importing the package builds its own filter (every variant of every word) at once.
    package = find_spec("better_profanity")
    assert package is not None and package.submodule_search_locations, "better-profanity is not installed"
    folder = Path(next(iter(package.submodule_search_locations)))
    text = (folder / "profanity_wordlist.txt").read_text(encoding="utf-8")
    words = (re.sub(r"[^A-Z0-9]", "", line.upper()) for line in text.splitlines())
    return frozenset(key(word) for word in words if len(word) >= 3)
