"""The reward events a referral's moves announce, as outbox records (referrals.outbox publishes them).

Each carries a stable `idempotencyKey`; the reward itself (`ReferralRewardEarned`, `ReferralRewardHeld`) has
one key per friend, so that whatever happens a consumer can never credit a friend's referrer twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from referrals import outbox, storage
from referrals.config import Site
from referrals.formats import iso, money, parse_time
from referrals.rewards.lifecycle import Order, Review, deadline_of


def _parties(referral: storage.ReferralItem) -> dict[str, Any]:
    return {"site": referral.site, "referrerId": referral.referrer_id, "refereeId": referral.referee_id}


def _registered(site: Site, referral: storage.ReferralItem, at: datetime) -> storage.OutboxItem:
    rules = site.rewards
    return outbox.record(
        referral.referee_id,
        "ReferralRegistered",
        f"ReferralRegistered:{referral.referee_id}",
        {
            **_parties(referral),
            "registeredAt": iso(at),
            "qualifiesUntil": iso(deadline_of(rules, at)),
            "discount": {"type": "PERCENTAGE", "percent": rules.referee_discount_percent},
            # Flagged sign-ups say so, so the offer system may hold the friend's discount too.
            **({"review": {"reason": referral.review_reason}} if referral.review == Review.FLAGGED else {}),
        },
        at,
    )


def _qualified(referral: storage.ReferralItem, order: Order, window_ends_at: datetime, at: datetime) -> Any:
    assert order.amount is not None
    return outbox.record(
        referral.referee_id,
        "ReferralQualified",
        f"ReferralQualified:{referral.referee_id}:{order.order_id}",
        {
            **_parties(referral),
            "orderId": order.order_id,
            "orderTotal": {"amount": money(order.amount), "currency": order.currency},
            "windowEndsAt": iso(window_ends_at),
        },
        at,
    )


def _reversed(referral: storage.ReferralItem, order_id: str, reason: str, at: datetime) -> storage.OutboxItem:
    return outbox.record(
        referral.referee_id,
        "ReferralReversed",
        f"ReferralReversed:{referral.referee_id}:{order_id}",
        {**_parties(referral), "orderId": order_id, "reason": reason},
        at,
    )


def _earned(site: Site, referral: storage.ReferralItem, order_id: str, at: datetime) -> storage.OutboxItem:
    # One key per friend: whatever happens, a consumer can never credit this friend's referrer twice.
    return outbox.record(
        referral.referee_id,
        "ReferralRewardEarned",
        f"ReferralRewardEarned:{referral.referee_id}",
        {
            **_parties(referral),
            "orderId": order_id,
            "reward": _referrer_reward(site),
        },
        at,
    )


def _held(site: Site, referral: storage.ReferralItem, order_id: str, at: datetime) -> storage.OutboxItem:
    # For whoever reviews (the offer system): which reward waits, and why. One per friend, as the reward.
    return outbox.record(
        referral.referee_id,
        "ReferralRewardHeld",
        f"ReferralRewardHeld:{referral.referee_id}",
        {
            **_parties(referral),
            "orderId": order_id,
            "reason": referral.review_reason,
            "reward": _referrer_reward(site),
        },
        at,
    )


def _referrer_reward(site: Site) -> dict[str, str]:
    """What the referrer earns on `site` (one reward, told the same way when earned and when held)."""
    return {"type": "ACCOUNT_CREDIT", "amount": money(site.rewards.referrer_credit), "currency": site.currency}


def prepare_registration(site: Site, referral: storage.ReferralItem) -> list[storage.OutboxItem]:
    """For a new referral: put an eligible one on the due index (it expires if no order qualifies) and give
    the `ReferralRegistered` event (with the friend's discount) that the registration transaction writes."""
    if not referral.eligible:
        return []
    registered_at = parse_time(referral.created_at)
    referral.due_shard = storage.due_shard(referral.referee_id)
    referral.due_at = iso(deadline_of(site.rewards, registered_at))
    return [_registered(site, referral, registered_at)]
