"""Privacy: erase one customer's personal data, and export one customer's referral data (docs/privacy.md).

Both are server to server: the API serves them to IAM callers only, and a `CustomerDeleted` event from the
commerce system erases too. Erasure is bounded (one read, one transaction, whatever the customer did) and
idempotent (a second erasure finds nothing left and writes nothing). It never moves a count or a reward:
a friend's erasure leaves their referrer's count and reward as they were; an erased referrer's code is
disabled so that nobody can sign up with it again, and it is never issued to anyone else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from referrals import codes, counting, emails, formats, rewards, storage
from referrals.config import Settings
from referrals.errors import Busy, InvalidInput

# What a referrer sees, in place of the masked name, of a friend whose data was erased.
ERASED_FRIEND_NAME = "Former customer"
MAX_ID_LENGTH = 128
# Referrals made, per export call (a Query of the ByReferrerShard index per count shard read; ~500 bytes each, well
# inside a Query's 1 MB page).
EXPORT_PAGE_SIZE = 500
MAX_TOKEN_LENGTH = 2048
_ATTEMPTS = 6


class Erased(StrEnum):
    ACCOUNT = "ACCOUNT"  # the customer item: email hash, first name, who referred them
    REFERRAL_CODE = "REFERRAL_CODE"  # the code disabled, its owner's name and email hash removed
    REFERRAL_COUNT = "REFERRAL_COUNT"  # their own count items
    FRIEND_NAME = "FRIEND_NAME"  # their masked name on the referral that brought them
    INVITE_LIMIT = "INVITE_LIMIT"  # their invite rate-limit bucket


def check_customer_id(value: Any) -> str:
    """A customer id as the identity provider issues it: given, bounded, printable. Taken exactly as given."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("customerId", "REQUIRED", "customerId is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput("customerId", "MAX_LENGTH", f"customerId must be at most {MAX_ID_LENGTH} characters")
    if emails.has_control_characters(value):
        raise InvalidInput("customerId", "INVALID_CHARACTERS", "customerId must not hold control characters")
    return value


def reference(customer_id: str) -> str:
    """What logs carry instead of an erased customer's id: an auditor holding the id can recompute it, the
    log alone names nobody."""
    return hashlib.sha256(customer_id.encode()).hexdigest()[:16]


# ---------- erasure ----------


@dataclass(frozen=True)
class Erasure:
    customer_id: str
    erased_at: str
    erased: list[str] = field(default_factory=list)  # what this call changed; empty when nothing was left


def _what(targets: storage.ErasureTargets) -> list[str]:
    found: list[str] = []
    if targets.customer is not None:
        found += [Erased.ACCOUNT, Erased.REFERRAL_CODE, Erased.REFERRAL_COUNT]
    if targets.referral is not None and not targets.referral_erased:
        found.append(Erased.FRIEND_NAME)
    if targets.invite_bucket:
        found.append(Erased.INVITE_LIMIT)
    return [str(item) for item in found]


def erase(customer_id: str, now: datetime) -> Erasure:
    """Erase or anonymise everything personal stored under this customer's id.

    Requests: one strongly consistent BatchGetItem, then one TransactWriteItems when anything is left (none
    when nothing is). Another erasure racing this one makes the transaction fail its conditions; we read
    again, and find less or nothing left to do.

    Kept on purpose (docs/privacy.md): the referrals they made (their friends' records, which carry only their
    id), their order facts until their TTL (the referrer's reward is decided on them), cool-down claims until
    their TTL and suppressions (both protect the mailbox from more mail), and monthly cap counters until their TTL.
    """
    customer_id = check_customer_id(customer_id)
    erased_at = formats.iso(now)
    for _ in range(_ATTEMPTS):
        targets = storage.load_erasure_targets(customer_id)
        what = _what(targets)
        if not what:
            return Erasure(customer_id, erased_at)
        if storage.erase_customer(customer_id, targets, ERASED_FRIEND_NAME, erased_at):
            return Erasure(customer_id, erased_at, what)
    raise Busy()


# ---------- export ----------


@dataclass(frozen=True)
class ExportedAccount:
    site: str
    created_at: str
    first_name: str
    email_hash: str  # SHA-256 of the normalised address: what we hold instead of the address


@dataclass(frozen=True)
class ExportedCode:
    code: str
    status: str
    created_at: str
    referral_link: str | None


@dataclass(frozen=True)
class ExportedOrderEvent:
    order_id: str
    kind: str
    at: str
    amount: str | None
    currency: str | None


@dataclass(frozen=True)
class ReferralReceived:
    """The referral that brought the customer: which code, where its reward stands, what we recorded of
    their orders for it. The referrer is not named: they are another customer."""

    code: str
    status: str
    reason: str | None
    created_at: str
    friend_name: str
    window_ends_at: str | None
    settled_at: str | None
    order_events: list[ExportedOrderEvent]


@dataclass(frozen=True)
class ReferralMade:
    status: str
    reason: str | None
    created_at: str
    friend_name: str
    settled_at: str | None


@dataclass(frozen=True)
class ReferralsMadePage:
    items: list[ReferralMade]
    total: int
    next_token: str | None


@dataclass(frozen=True)
class InviteCounts:
    """Invites are stored as address hashes for the cool-down only, so counts are all there is to export."""

    sent: int
    period_days: int


@dataclass(frozen=True)
class CustomerExport:
    customer_id: str
    exported_at: str
    account: ExportedAccount | None
    referral_code: ExportedCode | None
    referral_count: int
    referred_by: ReferralReceived | None
    referrals_made: ReferralsMadePage
    invites: InviteCounts


def _encode_token(cursor: storage.ReferralsCursor) -> str:
    parts: list[Any] = [cursor.shard]
    if cursor.last:
        parts += [cursor.last["pk"], cursor.last["sk"], cursor.last["createdAt"]]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None) -> storage.ReferralsCursor | None:
    """Where a `nextToken` says to go on (a count shard, and a ByReferrerShard key in it); anything that is not
    one of ours is refused, not queried. A token of the earlier form (the key alone) is one in shard 0."""
    if token is None or token == "":
        return None
    problem = InvalidInput("nextToken", "INVALID_TOKEN", "nextToken is not one this export gave")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise problem
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as error:
        raise problem from error
    if isinstance(parts, list) and len(parts) == 3:
        parts = [0, *parts]
    if not isinstance(parts, list) or len(parts) not in (1, 4):
        raise problem
    shard, key = parts[0], parts[1:]
    if type(shard) is not int or not 0 <= shard < counting.MAX_SHARDS:
        raise problem
    if not key:
        return storage.ReferralsCursor(shard, None)
    if not all(isinstance(p, str) and p for p in key):
        raise problem
    pk, sk, created_at = key
    if not pk.startswith("REFEREE#") or sk != "REFERRAL":
        raise problem
    return storage.ReferralsCursor(shard, {"pk": pk, "sk": sk, "createdAt": created_at})


def _order_event(fact: storage.OrderFactItem) -> ExportedOrderEvent:
    return ExportedOrderEvent(
        order_id=fact.order_id,
        kind=fact.kind,
        at=fact.at,
        amount=None if fact.amount is None else format(fact.amount, "f"),
        currency=fact.currency,
    )


def _received(ledger: storage.RefereeLedger) -> ReferralReceived | None:
    referral = ledger.referral
    if referral is None:
        return None
    seen = rewards.summary(referral)
    return ReferralReceived(
        code=referral.code,
        status=seen.status,
        reason=seen.reason,
        created_at=referral.created_at,
        friend_name=referral.friend_name,
        window_ends_at=referral.window_ends_at,
        settled_at=referral.settled_at,
        order_events=[_order_event(fact) for fact in sorted(ledger.facts, key=lambda f: (f.at, f.sk))],
    )


def _made(referral: storage.ReferralItem) -> ReferralMade:
    seen = rewards.summary(referral)
    return ReferralMade(seen.status, seen.reason, referral.created_at, referral.friend_name, referral.settled_at)


def export(settings: Settings, customer_id: str, now: datetime, next_token: str | None = None) -> CustomerExport:
    """Everything we hold about one customer's part in the programme, as data (one page of referrals made).

    Requests: one BatchGetItem (account and count; one more when the count is spread over shards), one GetItem
    (the code), one Query (the referral that brought them, with its order facts), one Query of ByReferrerShard
    per count shard it reads (up to EXPORT_PAGE_SIZE referrals made; one while the count has one shard; every
    shard's when the account is gone) and one Query of ByInviter (Select COUNT). Constant in the number of
    referrals, orders and invites; follow `nextToken` for more referrals made.
    """
    customer_id = check_customer_id(customer_id)
    after = _decode_token(next_token)
    view = storage.load_customer_view(customer_id)
    customer = view.customer if view else None
    site = settings.sites.get(customer.site) if customer else settings.site(None)

    account: ExportedAccount | None = None
    code: ExportedCode | None = None
    if customer is not None:
        account = ExportedAccount(customer.site, customer.created_at, customer.first_name, customer.email_hash)
        item = storage.load_code(codes.key(customer.code))
        if item is not None:
            shown = storage.shown_code(item)
            link = site.referral_link(shown) if site else None
            code = ExportedCode(shown, item.status, item.created_at, link)

    referred_by = _received(storage.load_ledger(customer_id))
    # With the account gone (erased, or never made), nothing says how far its count spread: every shard is read.
    shards = view.count_shards if view else counting.MAX_SHARDS
    made, following = storage.referrals_made_page(customer_id, shards, after, EXPORT_PAGE_SIZE)
    total = view.referral_count if view else 0  # the account's count: friends who signed up with the code
    page = ReferralsMadePage([_made(r) for r in made], total, _encode_token(following) if following else None)

    cooldown_days = site.invites.cooldown_days if site else 0
    since = now - timedelta(days=cooldown_days)
    sent = storage.count_invites_since(customer_id, math.floor(since.timestamp())) if cooldown_days else 0
    return CustomerExport(
        customer_id=customer_id,
        exported_at=formats.iso(now.astimezone(UTC)),
        account=account,
        referral_code=code,
        referral_count=total,
        referred_by=referred_by,
        referrals_made=page,
        invites=InviteCounts(sent, math.ceil(cooldown_days)),
    )
