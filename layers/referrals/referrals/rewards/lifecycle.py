"""The rules of a referral's reward, with no I/O: the facts recorded about a friend's orders give its state.

A referral's state is a projection of those facts (docs/rewards.md draws the state table): the same facts give
the same state whatever order, and however often, they arrived. Nothing here reads the clock or the store:
"now" is given, and the orchestration (referrals.rewards.orchestration) reads and writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from referrals import storage
from referrals.config import RewardRules
from referrals.formats import day


class Status(StrEnum):
    REGISTERED = "REGISTERED"  # linked by the friend's registration; no qualifying order yet
    PENDING = "PENDING"  # a qualifying order was placed and is inside its return window
    EARNED = "EARNED"  # final: the order stood through its window and the referrer was credited
    REVERSED = "REVERSED"  # the qualifying order fell (cancelled, or refunded under the minimum); may still earn
    EXPIRED = "EXPIRED"  # the qualifying period ended with no standing order
    CAPPED = "CAPPED"  # final: the order stood, but the referrer had reached the month's cap
    NOT_ELIGIBLE = "NOT_ELIGIBLE"  # as the customer sees an ineligible referral (e.g. SELF_REFERRAL): never earns
    HELD = "HELD"  # a flagged referral whose order stood through its window: the reward waits for a reviewer
    REJECTED = "REJECTED"  # final: a reviewer rejected a flagged referral; it never earns


SETTLED = frozenset({Status.EARNED, Status.CAPPED})
# Order events change nothing of these: the outcome is decided (HELD is EARNED waiting for a reviewer's yes).
DECIDED = SETTLED | {Status.HELD, Status.REJECTED}


class Review(StrEnum):
    """A flagged referral's review (referrals.abuse gives the reason): one decision, final."""

    FLAGGED = "FLAGGED"  # waiting: its reward is held at the end of its window
    RELEASED = "RELEASED"  # a reviewer let it earn as any other referral
    REJECTED = "REJECTED"  # a reviewer refused it: it never earns


class Reason(StrEnum):
    ORDER_BELOW_MINIMUM = "ORDER_BELOW_MINIMUM"
    ORDER_CURRENCY_NOT_ACCEPTED = "ORDER_CURRENCY_NOT_ACCEPTED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    ORDER_REFUNDED = "ORDER_REFUNDED"
    NO_QUALIFYING_ORDER = "NO_QUALIFYING_ORDER"
    MONTHLY_CAP_REACHED = "MONTHLY_CAP_REACHED"
    ORDER_OUTSIDE_QUALIFYING_PERIOD = "ORDER_OUTSIDE_QUALIFYING_PERIOD"


class FactKind(StrEnum):
    PLACED = "PLACED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


# ---------- facts ----------


@dataclass(frozen=True)
class OrderFact:
    """One order event, as the adapter parsed it: what happened to which order, and when."""

    kind: FactKind
    order_id: str
    customer_id: str
    at: datetime
    event_id: str
    amount: Decimal | None = None
    currency: str | None = None
    refund_id: str | None = None

    def sort_key(self) -> str:
        if self.kind is FactKind.PLACED:
            suffix = ""
        elif self.kind is FactKind.CANCELLED:
            suffix = "#CANCELLED"
        else:
            suffix = f"#REFUND#{self.refund_key()}"
        return storage.OrderFactItem.sort_key(self.order_id, suffix)

    def refund_key(self) -> str:
        """A refund's identity. Its `refundId` when the producer gives one; without it, the same amount in the
        same currency refunded on one order is taken for one refund delivered twice (duplicates are the
        common case; two equal partial refunds need distinct ids)."""
        if self.refund_id:
            basis = f"id|{self.refund_id}"
        else:
            assert self.amount is not None
            basis = f"amount|{format(self.amount.normalize(), 'f')}|{self.currency}"
        return hashlib.sha256(basis.encode()).hexdigest()[:32]


@dataclass
class Order:
    """Everything known about one order: placed (amount, currency), cancelled, refunds (time, amount, currency)."""

    order_id: str
    placed_at: datetime | None = None
    amount: Decimal | None = None
    currency: str | None = None
    cancelled_at: datetime | None = None
    refunds: list[tuple[datetime, Decimal, str]] = field(default_factory=list)


def fold(facts: Iterable[OrderFact]) -> dict[str, Order]:
    orders: dict[str, Order] = {}
    for fact in facts:
        order = orders.setdefault(fact.order_id, Order(fact.order_id))
        if fact.kind is FactKind.PLACED:
            order.placed_at, order.amount, order.currency = fact.at, fact.amount, fact.currency
        elif fact.kind is FactKind.CANCELLED:
            order.cancelled_at = fact.at if order.cancelled_at is None else min(order.cancelled_at, fact.at)
        elif fact.amount is not None and fact.currency is not None:
            order.refunds.append((fact.at, fact.amount, fact.currency))
    return orders


# ---------- the projection: facts -> state ----------


@dataclass(frozen=True)
class Projection:
    status: Status
    reason: str | None = None
    pending_order_id: str | None = None
    window_ends_at: datetime | None = None


def deadline_of(rules: RewardRules, registered_at: datetime) -> datetime:
    """The last moment a first qualifying order may be placed."""
    return registered_at + timedelta(days=rules.qualifying_days)


def _problem(order: Order, rules: RewardRules, currency: str, registered_at: datetime) -> str | None:
    """Why a placed order cannot qualify at all, or None."""
    assert order.placed_at is not None and order.amount is not None
    if order.currency != currency:
        return Reason.ORDER_CURRENCY_NOT_ACCEPTED
    if order.amount < rules.minimum_order:
        return Reason.ORDER_BELOW_MINIMUM
    # No lower bound: an account's orders cannot predate it but by the other system's clock (to the second),
    # and the rules bound only how long after registering a first order may come.
    if order.placed_at > deadline_of(rules, registered_at):
        return Reason.ORDER_OUTSIDE_QUALIFYING_PERIOD
    return None


def fall_reason(order: Order, rules: RewardRules, currency: str) -> str | None:
    """Why a qualifying order fell inside its window (cancelled, or refunded under the minimum), or None."""
    assert order.placed_at is not None and order.amount is not None
    window_end = order.placed_at + timedelta(days=rules.return_window_days)
    if order.cancelled_at is not None and order.cancelled_at < window_end:
        return Reason.ORDER_CANCELLED
    # A refund in another currency than the order's cannot be weighed against it; it is recorded, not counted.
    refunded = sum((amount for at, amount, cur in order.refunds if cur == currency and at < window_end), Decimal(0))
    if order.amount - refunded < rules.minimum_order:
        return Reason.ORDER_REFUNDED
    return None


def project(
    rules: RewardRules,
    currency: str,
    registered_at: datetime,
    orders: Iterable[Order],
    now: datetime,
    expired: bool = False,
) -> Projection:
    """The state the facts give, for a referral that has not settled.

    The first qualifying order (by the time it was placed) that has not fallen is pending; an order placed
    earlier but delivered later takes its place, and when it falls the next one does. Expiry holds unless a
    qualifying order placed within the period turns up late.
    """
    candidates: list[Order] = []
    latest_problem: tuple[datetime, str] | None = None
    for order in orders:
        if order.placed_at is None:
            continue  # a cancel or refund that arrived before its order: kept, applied once the order arrives
        problem = _problem(order, rules, currency, registered_at)
        if problem is None:
            candidates.append(order)
        elif latest_problem is None or order.placed_at >= latest_problem[0]:
            latest_problem = (order.placed_at, problem)
    fallen: str | None = None
    for order in sorted(candidates, key=lambda o: (o.placed_at, o.order_id)):
        reason = fall_reason(order, rules, currency)
        if reason is None:
            assert order.placed_at is not None
            window_end = order.placed_at + timedelta(days=rules.return_window_days)
            return Projection(Status.PENDING, None, order.order_id, window_end)
        fallen = reason
    reason = fallen or (latest_problem[1] if latest_problem else None)
    if expired or now >= deadline_of(rules, registered_at):
        return Projection(Status.EXPIRED, reason or Reason.NO_QUALIFYING_ORDER)
    return Projection(Status.REVERSED if fallen else Status.REGISTERED, reason)


def _relevant(fact: OrderFact, rules: RewardRules, registered_at: datetime) -> bool:
    """Whether a fact could ever change this referral's outcome (others are not written at all)."""
    deadline = deadline_of(rules, registered_at)
    if fact.kind is FactKind.PLACED:
        return fact.at <= deadline
    return fact.at <= deadline + timedelta(days=rules.return_window_days)


# ---------- the programme's figures: days the facts give (docs/programme.md) ----------


@dataclass(frozen=True)
class Milestones:
    """The UTC days (yyyy-mm-dd) a referral's facts place it on the programme's figures; None where they do not.
    Functions of the facts alone (and of the state they give), so the figures do not depend on the order the facts
    arrived in, nor on how often."""

    qualified_on: str | None  # the friend's first qualifying order: the earliest placed order meeting the rules
    reversed_on: str | None  # the fall of their last qualifying order, while the referral stands reversed


def _fall_moment(order: Order, rules: RewardRules, currency: str) -> datetime:
    """When a fallen qualifying order fell: its cancellation inside the window, else the refund that took it
    under the minimum."""
    assert order.placed_at is not None and order.amount is not None
    window_end = order.placed_at + timedelta(days=rules.return_window_days)
    if order.cancelled_at is not None and order.cancelled_at < window_end:
        return order.cancelled_at
    left = order.amount
    for at, amount, cur in sorted(order.refunds):
        if cur == currency and at < window_end:
            left -= amount
            if left < rules.minimum_order:
                return at
    raise AssertionError("the order did not fall")


def milestones(
    rules: RewardRules, currency: str, registered_at: datetime, orders: Iterable[Order], after: Projection
) -> Milestones:
    qualifying = [
        order
        for order in orders
        if order.placed_at is not None and _problem(order, rules, currency, registered_at) is None
    ]
    qualified_on = day(min(o.placed_at for o in qualifying if o.placed_at)) if qualifying else None
    reversed_on = None
    if after.status in (Status.REVERSED, Status.EXPIRED) and after.reason in (
        Reason.ORDER_CANCELLED,
        Reason.ORDER_REFUNDED,
    ):
        falls = [_fall_moment(o, rules, currency) for o in qualifying if fall_reason(o, rules, currency)]
        reversed_on = day(max(falls)) if falls else None
    return Milestones(qualified_on, reversed_on)
