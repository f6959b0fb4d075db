"""Abuse of the programme: what holds a referral for review instead of rewarding it at once.

Two flags, each with the reason the referrer's view shows (`Customer.referrals`, docs/rewards.md "Review"):
- VELOCITY: more sign-ups with one code from one source (an IPv4 address, or an IPv6 /64) within one window
  than the site's `abuse.velocityLimit`; the ones past the limit are flagged. Counted by a counter item that
  rides in the registration transaction (storage.VelocityCharge): no read, and no request more while under it.
- DISPOSABLE_EMAIL: the friend's address is at a disposable domain (a maintained list plus the site's own).
Neither refuses a sign-up: the account is created and linked and the count counts. Only the referrer's reward
waits for a decision (rewards.review_referral).
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime
from enum import StrEnum
from functools import cache

from referrals import emails, storage
from referrals.config import Site


class Flag(StrEnum):
    VELOCITY = "VELOCITY"
    DISPOSABLE_EMAIL = "DISPOSABLE_EMAIL"


@cache
def shipped_domains() -> frozenset[str]:
    """The maintained list of disposable domains (the `disposable-email-domains` package, about 10,000, updated
    monthly upstream: a new release is a one-line pin), read once per environment when a sign-up with a code
    first needs it (3 ms)."""
    from disposable_email_domains import blocklist

    return frozenset(domain.lower() for domain in blocklist)


@cache
def _domains(extra: tuple[str, ...]) -> frozenset[str]:
    return shipped_domains() | frozenset(extra)


def is_disposable(site: Site, address: str) -> bool:
    """Whether an (already validated) address is at a disposable domain or any subdomain of one."""
    domain = emails.canonical(address).rpartition("@")[2]
    labels = domain.split(".")
    suffixes = {".".join(labels[i:]) for i in range(len(labels) - 1)}
    return not suffixes.isdisjoint(_domains(site.abuse.disposable_domains))


def source_of(ip: str | None) -> str:
    """What counts as one source: an IPv4 address; an IPv6 address's /64, since one subscriber is given a whole
    /64 and may use any address in it. An address AppSync did not give is one shared source (it always gives
    one to a signed-in caller, so this only ever makes the check stricter)."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def velocity_charge(
    site: Site, referrer_id: str, source_ip: str | None, now: datetime
) -> storage.VelocityCharge | None:
    """The counter a sign-up with a code of `referrer_id` from this source adds to, in fixed windows of the site's
    length; None when the site turned the check off. Keyed by the referrer, not the code: a customer's earlier codes
    (changeReferralCode) share one limit. The key holds a digest of the source, never the address."""
    rules = site.abuse
    if rules.velocity_limit <= 0:
        return None
    window_s = rules.velocity_window_minutes * 60
    window = int(now.timestamp()) // window_s
    digest = hashlib.sha256(source_of(source_ip).encode()).hexdigest()[:32]
    # Kept one window past its end (TTL), so clock skew never removes a counter that is still counting.
    expires_at = (window + 2) * window_s
    return storage.VelocityCharge(f"VELOCITY#{referrer_id}#{window}#{digest}", rules.velocity_limit, expires_at)
