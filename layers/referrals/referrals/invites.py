"""Invites: a customer asks us to email friends their referral link.

Order of work, so that a refusal costs nothing and nothing is half-done:
1. validate every address (no AWS call): one error naming every bad address, nothing sent, no token spent;
2. read the account (one GetItem);
3. spend one token per address from the customer's bucket, then from the site's (one conditional
   UpdateItem each, see ratelimit.py);
4. claim each address for the cool-down (one conditional UpdateItem each): suppressed or recently
   invited addresses are skipped and reported, and keep their token, so the bucket bounds the work
   any caller can cause;
5. one SES bulk templated call per 50 addresses, sent at most once (referrals.mailer); addresses SES refused
   are reported, their claims released and their tokens given back; addresses SES may have mailed without
   saying so (a timeout, a 5xx) are reported SEND_UNCONFIRMED and keep their claims and tokens.
Anything that fails before the mail goes out (a store that keeps refusing, a bug) gives back every token and
claim the call took, then surfaces: nothing is half-done (tests/drills/test_faults_invites.py).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from referrals import emails, mailer, programme, storage
from referrals.config import MailSettings, Settings, Site
from referrals.customers import Caller, site_of
from referrals.errors import (
    Busy,
    InvalidEmailAddresses,
    InvitationsNotSent,
    NoAccount,
    ProgrammeDisabled,
    RateLimited,
    TooManyEmailAddresses,
)
from referrals.ratelimit import Bucket, invite_bucket, site_send_bucket

MAX_NAME_IN_MAIL = 100


@dataclass(frozen=True)
class Recipient:
    given: str  # as the caller wrote it: what we report back
    address: str  # as mailed: trimmed, IDNA domain
    address_hash: str  # what we store


@dataclass(frozen=True)
class InviteOutcome:
    sent: list[str] = field(default_factory=list)
    not_sent: list[tuple[str, str]] = field(default_factory=list)  # (address as given, reason)


def validate_addresses(raw: list[str], own_email: str | None, limit: int) -> list[Recipient]:
    """The distinct addresses to mail, or one error naming every bad one.

    Duplicates are folded by mailbox (case, and Gmail's dots and +tags) and count once; surrounding spaces
    are ignored, but any control character (CR and LF included) makes an address invalid.
    """
    own_key = emails.identity_key(own_email) if own_email and not emails.invalid_reason(own_email) else None
    problems: list[tuple[str, str]] = []
    recipients: list[Recipient] = []
    seen: set[str] = set()
    for given in raw:
        candidate = given.strip(" ") if isinstance(given, str) else ""
        reason = emails.invalid_reason(candidate) if candidate else "EMPTY"
        key = emails.identity_key(candidate) if reason is None else None
        if key is not None and key == own_key:
            reason = "OWN_ADDRESS"
        if reason is not None:
            problems.append((str(given), reason))
            continue
        assert key is not None
        if key in seen:
            continue
        seen.add(key)
        recipients.append(Recipient(str(given), emails.canonical(candidate), emails.identity_hash(candidate)))
    if len(recipients) + len(problems) > limit:
        raise TooManyEmailAddresses(len(recipients) + len(problems), limit, problems)
    if problems:
        raise InvalidEmailAddresses(problems)
    return recipients


def _plain(text: str) -> str:
    """A name fit for a subject line: no control characters (no header injection), bounded length."""
    return "".join(c for c in text if not emails.has_control_characters(c)).strip()[:MAX_NAME_IN_MAIL]


def template_data(site: Site, first_name: str, code: str) -> dict[str, str]:
    """What the SES template is personalised with; SES (and the local renderer) escape it in the HTML part."""
    return {
        "referrerName": _plain(first_name) or "A friend",
        "siteName": site.name,
        "siteDomain": site.domain,
        "offerText": site.offer_text,
        "code": code,
        "link": site.referral_link(code),
        "cooldownDays": str(site.invites.cooldown_days),
    }


def _site_bucket_key(site: Site) -> str:
    return f"SITE#{site.key}"


def send_invites(
    settings: Settings,
    mail: MailSettings,
    caller: Caller,
    addresses: list[str],
    now: datetime | None = None,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> InviteOutcome:
    """Email each address an invite from the caller. See the module docstring for the order of work.

    DynamoDB requests: none for an empty list or invalid input; 1 + 1 when rate limited; for n new
    addresses, 1 read + 2 bucket updates + n claims (one more per bucket that is part-spent).
    """
    site = site_of(settings, caller)
    rules = site.invites
    recipients = validate_addresses(addresses, caller.email, rules.max_addresses_per_call)
    if not recipients:
        return InviteOutcome()
    customer = storage.load_customer(caller.customer_id)
    if customer is None or customer.site != site.key:
        raise NoAccount()
    if not site.enabled:
        raise ProgrammeDisabled()

    moment = now or datetime.now(UTC)
    now_ms = int(moment.timestamp() * 1000)
    now_s = now_ms // 1000
    cost = len(recipients)
    customer_bucket = invite_bucket(rules.bucket_capacity, rules.refill_per_day)
    customer_key = storage.customer_bucket_key(caller.customer_id)
    decision = storage.take_tokens(customer_key, customer_bucket, now_ms, cost)
    if not decision.admitted:
        raise RateLimited(customer_bucket.name, decision.retry_after_seconds)
    site_bucket = site_send_bucket(rules.site_sends_per_second, rules.site_burst_seconds)
    spent = [(customer_key, customer_bucket)]

    cooldown_until = now_s + math.ceil(rules.cooldown_days * 86_400)
    to_send: list[Recipient] = []
    not_sent: list[tuple[str, str]] = []
    claiming: list[Recipient] = []  # the claim in flight: applied, perhaps, though its answer never came
    try:
        site_decision = storage.take_tokens(_site_bucket_key(site), site_bucket, now_ms, cost)
        if not site_decision.admitted:
            raise RateLimited(site_bucket.name, site_decision.retry_after_seconds)
        spent.append((_site_bucket_key(site), site_bucket))
        for recipient in recipients:
            claiming = [recipient]
            refusal = storage.claim_address(site.key, recipient.address_hash, caller.customer_id, now_s, cooldown_until)
            claiming = []
            if refusal is None:
                to_send.append(recipient)
            else:
                not_sent.append((recipient.given, refusal))
        if not to_send:
            return InviteOutcome(not_sent=not_sent)
        data = template_data(site, customer.first_name, customer.code)
        # Raises only when SES refused the first call outright (nothing sent); `time_left` keeps a send from
        # starting that could outlive the function.
        deliveries = mailer.send_bulk(mail, site, data, [r.address for r in to_send], time_left)
    except Exception:
        # Refused or failed before anything was mailed: give back every token and claim this call took.
        _give_back(site.key, caller.customer_id, now_s, to_send + claiming, spent, cost)
        raise
    by_address = {r.address: r for r in to_send}
    failed = [by_address[d.address] for d in deliveries if d.outcome is mailer.Sent.REFUSED]
    # SES gave no answer that says either way: it may have mailed them. Their claims and tokens stay, so the
    # same request again skips them (RECENTLY_INVITED) instead of mailing a friend twice.
    unconfirmed = [by_address[d.address] for d in deliveries if d.outcome is mailer.Sent.UNCONFIRMED]
    not_sent.extend((recipient.given, "SEND_FAILED") for recipient in failed)
    not_sent.extend((recipient.given, "SEND_UNCONFIRMED") for recipient in unconfirmed)
    _give_back(site.key, caller.customer_id, now_s, failed, spent, len(failed))
    sent = [by_address[d.address].given for d in deliveries if d.outcome is mailer.Sent.ACCEPTED]
    if not sent and not unconfirmed and failed:
        raise InvitationsNotSent(not_sent)
    programme.count(site.key, "invitesSent", len(sent))
    return InviteOutcome(sent=sent, not_sent=not_sent)


def _give_back(
    site_key: str,
    customer_id: str,
    claimed_at_s: int,
    claimed: list[Recipient],
    spent: list[tuple[str, Bucket]],
    tokens: int,
) -> None:
    """Undo what this call holds for mail that did not go out: release its claims, refund its tokens.

    Best effort, each step on its own: a give-back DynamoDB still refuses after botocore's retries must not
    hide from the caller what happened (some mail may have gone out). What it leaves is bounded: a token that
    refills within the day, or a friend who waits out the cool-down before the next invite.
    """
    for recipient in claimed:
        with contextlib.suppress(Busy):
            storage.release_address(site_key, recipient.address_hash, customer_id, claimed_at_s)
    for key, bucket in spent if tokens else []:
        with contextlib.suppress(Busy):
            storage.return_tokens(key, bucket, tokens)


# ---------- bounces and complaints (SES -> EventBridge -> MailEventsFunction) ----------


def _recipients(detail: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(reason, addresses) to suppress for one SES event: hard bounces and complaints only."""
    kind = detail.get("eventType") or detail.get("notificationType")
    if kind == "Bounce":
        bounce = detail.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return None, []  # soft bounces retry on their own and say nothing about the mailbox
        return "BOUNCE", [r.get("emailAddress", "") for r in bounce.get("bouncedRecipients") or []]
    if kind == "Complaint":
        complaint = detail.get("complaint") or {}
        return "COMPLAINT", [r.get("emailAddress", "") for r in complaint.get("complainedRecipients") or []]
    return None, []


def suppress_from_mail_event(settings: Settings, detail: dict[str, Any], time: str) -> int:
    """Put the addresses of a hard bounce or a complaint on the site's suppression list: how many.

    The site comes from the `site` tag every invite carries. Idempotent (events arrive at least once):
    one UpdateItem per address that keeps the first suppression's time.
    """
    reason, addresses = _recipients(detail)
    tags = (detail.get("mail") or {}).get("tags") or {}
    site_tag = tags.get("site") or []
    site_key = site_tag[0] if isinstance(site_tag, list) and site_tag else None
    if reason is None or site_key not in settings.sites:
        return 0
    suppressed = 0
    for raw in addresses:
        address = parseaddr(raw)[1]
        if not address or emails.invalid_reason(address):
            continue
        storage.suppress_address(site_key, emails.identity_hash(address), reason, time)
        suppressed += 1
    return suppressed
