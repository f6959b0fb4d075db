"""Review: a reviewer releases or rejects a referral flagged for review (docs/rewards.md, "Review").

While flagged, a referral moves as any other until its window closes; then it is HELD (referrals.rewards
.orchestration) and waits here. A release earns the held reward; a rejection ends the referral.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from referrals import outbox, storage
from referrals.config import Settings
from referrals.errors import AlreadyReviewed, Busy, InvalidInput, NotUnderReview, ReferralNotFound, UnknownSite
from referrals.formats import iso
from referrals.rewards.lifecycle import SETTLED, Reason, Review, Status
from referrals.rewards.listing import summary
from referrals.rewards.orchestration import _ATTEMPTS, _earn_or_cap, paying_site

MAX_ID_LENGTH = 128


class ReviewDecision(StrEnum):
    """What a reviewer decides (GraphQL's ReviewDecision)."""

    RELEASE = "RELEASE"
    REJECT = "REJECT"


@dataclass(frozen=True)
class ReviewOutcome:
    referee_id: str
    decision: str
    status: str
    reason: str | None
    reviewed_at: str


def _check_referee_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("refereeId", "REQUIRED", "refereeId is required")
    if len(value) > MAX_ID_LENGTH or any(not c.isprintable() or c.isspace() for c in value):
        raise InvalidInput("refereeId", "INVALID_FORMAT", "refereeId is not a customer id")
    return value


def _reviewed(referral: storage.ReferralItem) -> ReviewOutcome:
    seen = summary(referral)
    decision = ReviewDecision.RELEASE if referral.review == Review.RELEASED else ReviewDecision.REJECT
    return ReviewOutcome(referral.referee_id, decision.value, seen.status, seen.reason, referral.reviewed_at or "")


def review_referral(settings: Settings, referee_id: Any, decision: Any, reviewer: str, now: datetime) -> ReviewOutcome:
    """A reviewer's decision on a flagged referral: final, and idempotent (the same decision again answers what
    the first did; the other decision is refused with AlreadyReviewed).

    RELEASE of a HELD referral earns its reward now (the one PENDING/HELD -> EARNED move, under the month's cap,
    conditional on the version read, so a reward is paid at most once whoever races); RELEASE of one still
    waiting for its order or window lets the reconciliation earn it as any other. REJECT ends it: REJECTED,
    never earns (an EXPIRED one stays EXPIRED, with the decision recorded).

    Requests: one Query (the referral); one UpdateItem, or, releasing a held reward, one TransactWriteItems
    (referral, monthly counter, event) then one PutEvents and one BatchWriteItem (the outbox).
    """
    referee_id = _check_referee_id(referee_id)
    try:
        choice = ReviewDecision(decision)
    except ValueError:
        raise InvalidInput("decision", "INVALID_OPTION", "decision must be RELEASE or REJECT") from None
    done = Review.RELEASED if choice is ReviewDecision.RELEASE else Review.REJECTED
    for _ in range(_ATTEMPTS):
        referral = storage.load_ledger(referee_id).referral
        if referral is None:
            raise ReferralNotFound()
        if not referral.review:
            raise NotUnderReview()
        if referral.review == done:
            return _reviewed(referral)  # the same decision again (a retry): nothing to write
        if referral.review != Review.FLAGGED:
            raise AlreadyReviewed(referral.review)
        site = settings.sites.get(referral.site)
        if site is None:
            raise UnknownSite(referral.site)
        version = int(referral.version or 0)
        decided = {"review": done.value, "reviewed_at": iso(now), "reviewed_by": reviewer[:256]}
        events: list[storage.OutboxItem] = []
        if choice is ReviewDecision.RELEASE and referral.status == Status.HELD:
            settled, events = _earn_or_cap(paying_site(settings, referral), referral, version, now, decided)
            if settled is None:
                continue  # it moved since we read it: read again, decide again
            reason = None if settled is Status.EARNED else Reason.MONTHLY_CAP_REACHED.value
            updates = {**decided, "status": settled.value, "reason": reason}
        else:
            updates = dict(decided)
            if choice is ReviewDecision.REJECT and referral.status not in (*SETTLED, Status.EXPIRED):
                ended = {"status": Status.REJECTED.value, "reason": referral.review_reason, "settled_at": iso(now)}
                updates.update(ended, due_shard=None, due_at=None)
            if storage.commit(storage.LedgerChange(referral, version, updates)) is not storage.Commit.DONE:
                continue
        outbox.publish(events)  # never raises: what it cannot publish, the reconciliation will
        for name, value in updates.items():
            setattr(referral, name, value)
        return _reviewed(referral)
    raise Busy()
