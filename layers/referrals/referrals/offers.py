"""The public code lookup for the landing page a friend opens: is this code good, and what does it offer?

Anyone may call it (an API key, no account), so it says only what the landing page shows (the site's
name and offer, the referrer's first name) and is limited per source IP so codes cannot be enumerated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from referrals import codes, programme, storage
from referrals.config import Settings
from referrals.errors import RateLimited
from referrals.ratelimit import lookup_bucket


@dataclass(frozen=True)
class ReferralOffer:
    valid: bool
    code: str | None = None
    referrer_first_name: str | None = None
    site_name: str | None = None
    offer_text: str | None = None
    # Not in the schema (AppSync returns only the schema's fields): the site, for the programme's metrics.
    site_key: str | None = None


def _ip_key(ip: str | None) -> str:
    # IP addresses are personal data: the bucket is keyed by a digest, never the address.
    return "LOOKUP#" + hashlib.sha256((ip or "unknown").encode()).hexdigest()[:32]


def lookup(settings: Settings, raw_code: str, source_ip: str | None, now: datetime | None = None) -> ReferralOffer:
    """One token from the caller's IP bucket (one UpdateItem), then the code (one GetItem) if well formed, and for
    a valid code, the programme's offerLookups (one TransactWriteItems, referrals.programme).
    `source_ip` is the address referrals.sources chose: never one the caller wrote into X-Forwarded-For.

    Every refusal looks the same (`valid: false`), whether the code is unknown, disabled, or of a site
    that no longer runs the programme.
    """
    moment = now or datetime.now(UTC)
    bucket = lookup_bucket(settings.code_lookups.capacity, settings.code_lookups.refill_per_hour)
    decision = storage.take_tokens(_ip_key(source_ip), bucket, int(moment.timestamp() * 1000), 1)
    if not decision.admitted:
        raise RateLimited(bucket.name, decision.retry_after_seconds)
    code = codes.normalise(raw_code) if len(raw_code) <= codes.MAX_INPUT_LENGTH else None
    if code is None or not codes.is_well_formed(code):
        return ReferralOffer(valid=False)
    item = storage.load_code(codes.key(code))  # look-alike characters matched as one
    if item is None or item.status != "ACTIVE":
        return ReferralOffer(valid=False)
    site = settings.sites.get(item.site)
    if site is None or not site.enabled:
        return ReferralOffer(valid=False)
    programme.count(site.key, "offerLookups", now=moment)
    return ReferralOffer(
        valid=True,
        code=storage.shown_code(item),
        referrer_first_name=item.owner_first_name,
        site_name=site.name,
        offer_text=site.offer_text,
        site_key=site.key,
    )
