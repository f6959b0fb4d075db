"""The customer's view of their referrals: each one's status and, where it did not earn, why."""

from __future__ import annotations

from dataclasses import dataclass

from referrals import storage
from referrals.config import Settings
from referrals.errors import InvalidInput
from referrals.rewards.lifecycle import Review, Status

MAX_PAGE_SIZE = 50
MAX_OFFSET = 1000


@dataclass(frozen=True)
class ReferralSummary:
    status: str
    created_at: str
    friend_name: str
    reason: str | None


@dataclass(frozen=True)
class ReferralPage:
    items: list[ReferralSummary]
    total: int
    has_more: bool


# While a flagged referral waits for its review, this is what its `reason` says (the flag), unless it ended anyway.
_REVIEW_SHOWN = frozenset({Status.REGISTERED, Status.PENDING, Status.REVERSED, Status.HELD})


def summary(referral: storage.ReferralItem) -> ReferralSummary:
    if not referral.eligible:
        return ReferralSummary(
            Status.NOT_ELIGIBLE.value, referral.created_at, referral.friend_name, referral.ineligible_reason
        )
    reason = referral.reason
    if referral.review == Review.FLAGGED and referral.status in _REVIEW_SHOWN:
        reason = referral.review_reason
    return ReferralSummary(referral.status, referral.created_at, referral.friend_name, reason)


def list_referrals(
    settings: Settings,
    referrer_id: str,
    offset: int,
    limit: int,
    known_total: int | None = None,
    known_shards: int | None = None,
) -> ReferralPage:
    """A referrer's friends, newest first, with each referral's status and why it did not earn (if so).

    Requests: one Query of the ByReferrerShard index per count shard (one, unless the code went viral); plus one
    BatchGetItem (two for a spread count) for the total and the shards when the caller does not already know
    them (the parent `customer` field does).
    """
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput("offset", "OUT_OF_RANGE", f"offset must be between 0 and {MAX_OFFSET}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput("limit", "OUT_OF_RANGE", f"limit must be between 1 and {MAX_PAGE_SIZE}")
    total, shards = known_total, known_shards
    if total is None or shards is None:
        view = storage.load_customer_view(referrer_id)
        total = view.referral_count if view else 0
        shards = view.count_shards if view else 1
    if offset >= total:
        return ReferralPage([], total, False)
    found = storage.query_referrals(referrer_id, shards, offset, limit)
    return ReferralPage([summary(r) for r in found], total, offset + len(found) < total)
