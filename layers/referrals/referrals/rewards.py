"""The reward lifecycle of a referral: order facts in, at most one reward per friend out.

A referral's state is a projection of the facts recorded about the friend's orders (docs/rewards.md draws the
state table). Each order event adds one fact and moves the referral in the same conditional transaction, so
the same facts give the same state whatever order, and however often, the events arrive. The reconciliation
settles what time alone decides: a return window that closed, a qualifying period that ended. A referral
flagged for review (referrals.abuse) is HELD instead of earned when its window closes, until a reviewer releases
or rejects it (review_referral). Nothing here reads the clock: "now" is the order event's time, the scheduled
run's, or the reviewer's request's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from referrals import outbox, storage
from referrals.config import RewardRules, Settings, Site
from referrals.errors import AlreadyReviewed, Busy, InvalidInput, NotUnderReview, ReferralNotFound, UnknownSite


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


class Decision(StrEnum):
    RELEASE = "RELEASE"
    REJECT = "REJECT"


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


# An outbox record the publisher has not deleted this long after it was written is republished by the
# reconciliation (the writer may still be publishing it within this time; consumers dedupe on the key anyway).
OUTBOX_GRACE = timedelta(minutes=5)
# Order facts are kept (TTL) until this long after the last moment they could still change an outcome.
FACT_RETENTION = timedelta(days=30)
# Cap counters are kept a little over a year, for audit.
CAP_RETENTION = timedelta(days=400)
_ATTEMPTS = 6
MAX_PAGE_SIZE = 50
MAX_OFFSET = 1000


def iso(moment: datetime) -> str:
    """The one text form of a time we store: UTC, milliseconds, `+00:00` (sorts as it reads)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def money(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01")), "f")


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


def _fact_of(item: storage.OrderFactItem) -> OrderFact:
    return OrderFact(
        kind=FactKind(item.kind),
        order_id=item.order_id,
        customer_id="",
        at=parse_time(item.at),
        event_id=item.event_id,
        amount=item.amount,
        currency=item.currency,
    )


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


def _updates(referral: storage.ReferralItem, projection: Projection, rules: RewardRules) -> dict[str, Any]:
    due: datetime | None = None
    if projection.status is Status.PENDING:
        due = projection.window_ends_at
    elif projection.status in (Status.REGISTERED, Status.REVERSED):
        due = deadline_of(rules, parse_time(referral.created_at))
    return {
        "status": projection.status.value,
        "reason": projection.reason,
        "pending_order_id": projection.pending_order_id,
        "window_ends_at": iso(projection.window_ends_at) if projection.window_ends_at else None,
        "due_shard": storage.due_shard(referral.referee_id) if due else None,
        "due_at": iso(due) if due else None,
    }


# ---------- events out ----------


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
            "reward": {
                "type": "ACCOUNT_CREDIT",
                "amount": money(site.rewards.referrer_credit),
                "currency": site.currency,
            },
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
            "reward": {
                "type": "ACCOUNT_CREDIT",
                "amount": money(site.rewards.referrer_credit),
                "currency": site.currency,
            },
        },
        at,
    )


def _hold(referral: storage.ReferralItem) -> dict[str, Any]:
    """PENDING to HELD: off the due index (nothing but a reviewer moves it now), the flag's reason shown."""
    return {"status": Status.HELD.value, "reason": referral.review_reason, "due_shard": None, "due_at": None}


def prepare_registration(site: Site, referral: storage.ReferralItem) -> list[storage.OutboxItem]:
    """For a new referral: put an eligible one on the due index (it expires if no order qualifies) and give
    the `ReferralRegistered` event (with the friend's discount) that the registration transaction writes."""
    if not referral.eligible:
        return []
    registered_at = parse_time(referral.created_at)
    referral.due_shard = storage.due_shard(referral.referee_id)
    referral.due_at = iso(deadline_of(site.rewards, registered_at))
    return [_registered(site, referral, registered_at)]


# ---------- order events ----------


class Outcome(StrEnum):
    RECORDED = "RECORDED"  # the fact was written and the referral moved (or stayed) with it
    DUPLICATE = "DUPLICATE"  # this fact was already recorded: nothing written
    NOT_REFERRED = "NOT_REFERRED"  # the customer registered without a friend's code
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    SETTLED = "SETTLED"  # the referral already earned (or was capped): nothing can change it
    IRRELEVANT = "IRRELEVANT"  # outside the qualifying period and its windows: cannot change the outcome
    UNKNOWN_SITE = "UNKNOWN_SITE"


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    status: str | None = None
    announced: tuple[str, ...] = ()
    published: int = 0
    unpublished: int = 0


def apply_order_event(settings: Settings, fact: OrderFact) -> Applied:
    """Record one order event for the friend who placed the order, and move their referral accordingly.

    Requests: one Query (the referral and its facts); then, when the fact is new and can matter, one
    TransactWriteItems (the fact, conditional on its key; the referral, conditional on its version; the
    events). When an event was recorded: one PutEvents and one BatchWriteItem (the outbox, cleared).
    """
    for _ in range(_ATTEMPTS):
        ledger = storage.load_ledger(fact.customer_id)
        referral = ledger.referral
        if referral is None:
            return Applied(Outcome.NOT_REFERRED)
        if not referral.eligible:
            return Applied(Outcome.NOT_ELIGIBLE, Status.NOT_ELIGIBLE.value)
        if referral.status in DECIDED:
            return Applied(Outcome.SETTLED, referral.status)
        site = settings.sites.get(referral.site)
        if site is None:
            return Applied(Outcome.UNKNOWN_SITE, referral.status)
        rules = site.rewards
        registered_at = parse_time(referral.created_at)
        if not _relevant(fact, rules, registered_at):
            return Applied(Outcome.IRRELEVANT, referral.status)
        sort_key = fact.sort_key()
        if any(known.sk == sort_key for known in ledger.facts):
            return Applied(Outcome.DUPLICATE, referral.status)

        orders = fold([*(_fact_of(known) for known in ledger.facts), fact])
        expired = referral.status == Status.EXPIRED
        after = project(rules, site.currency, registered_at, orders.values(), fact.at, expired)
        events = _announcements(referral, after, orders, rules, site.currency, fact.at)
        change = storage.LedgerChange(
            referral,
            int(referral.version or 0),
            _updates(referral, after, rules),
            facts=[_fact_item(fact, sort_key, rules, registered_at)],
            events=events,
        )
        result = storage.commit(change)
        if result is storage.Commit.STALE:
            continue  # someone moved this referral since we read it: read again, decide again
        if result is storage.Commit.DUPLICATE:
            return Applied(Outcome.DUPLICATE, referral.status)
        published = outbox.publish(events)
        return Applied(
            Outcome.RECORDED,
            after.status.value,
            tuple(e.detail_type for e in events),
            published.published,
            published.unpublished,
        )
    raise Busy()


def _announcements(
    referral: storage.ReferralItem,
    after: Projection,
    orders: dict[str, Order],
    rules: RewardRules,
    currency: str,
    at: datetime,
) -> list[storage.OutboxItem]:
    events: list[storage.OutboxItem] = []
    before = referral.pending_order_id
    if before and before != after.pending_order_id and before in orders:
        reason = fall_reason(orders[before], rules, currency)
        if reason:  # (an order merely overtaken by an earlier one, delivered late, did not fall)
            events.append(_reversed(referral, before, reason, at))
    if after.pending_order_id and after.pending_order_id != before:
        assert after.window_ends_at is not None
        events.append(_qualified(referral, orders[after.pending_order_id], after.window_ends_at, at))
    return events


def _fact_item(fact: OrderFact, sort_key: str, rules: RewardRules, registered_at: datetime) -> storage.OrderFactItem:
    last_relevant = deadline_of(rules, registered_at) + timedelta(days=rules.return_window_days)
    return storage.OrderFactItem(
        storage.referee_pk(fact.customer_id),
        sort_key,
        order_id=fact.order_id,
        kind=fact.kind.value,
        at=iso(fact.at),
        amount=fact.amount,
        currency=fact.currency,
        event_id=fact.event_id,
        expires_at=int((last_relevant + FACT_RETENTION).timestamp()),
    )


# ---------- reconciliation ----------


@dataclass
class ReconcileReport:
    due: int = 0
    earned: int = 0
    capped: int = 0
    held: int = 0
    expired: int = 0
    republished: int = 0
    published: int = 0
    unpublished: int = 0
    contended: int = 0
    complete: bool = True


def reconcile(
    settings: Settings,
    now: datetime,
    *,
    keep_going: Callable[[], bool] = lambda: True,
    page_size: int = 100,
) -> ReconcileReport:
    """Settle everything due by `now`: earn rewards whose window closed (hold those flagged for review), expire
    referrals whose qualifying period ended, republish events still in the outbox. Reads only the due index, a
    page at a time, so its cost follows the work due, not the table. Safe to run twice (or at once) for the same
    `now`: every move is conditional on the version it read, and what it settled is no longer due.

    Requests: per shard one Query per page (and one when nothing is due); per referral one TransactWriteItems
    (earn: referral, monthly counter, event; hold: referral, event) or one UpdateItem (expire); per page one
    PutEvents per 10 events and one BatchWriteItem per 25 published.
    """
    report = ReconcileReport()
    until = iso(now)
    for shard in range(storage.DUE_SHARDS):
        start: dict[str, Any] | None = None
        while True:
            if not keep_going():
                report.complete = False  # the next run starts again from the oldest due item
                return report
            items, start = storage.due_page(shard, until, start, page_size)
            report.due += len(items)
            events: list[storage.OutboxItem] = []
            for item in items:
                if isinstance(item, storage.OutboxItem):
                    events.append(item)
                    report.republished += 1
                else:
                    events.extend(_settle(settings, item, now, report))
            sent = outbox.publish(events)
            report.published += sent.published
            report.unpublished += sent.unpublished
            if start is None:
                break
    return report


def _settle(
    settings: Settings, referral: storage.ReferralItem | None, now: datetime, report: ReconcileReport
) -> list[storage.OutboxItem]:
    for _ in range(_ATTEMPTS):
        if referral is None or not referral.eligible:
            return []
        site = settings.sites.get(referral.site)
        if site is None:
            return []
        rules = site.rewards
        status = referral.status
        version = int(referral.version or 0)
        if (
            status == Status.PENDING
            and referral.review == Review.FLAGGED
            and referral.window_ends_at
            and parse_time(referral.window_ends_at) <= now
        ):
            # Flagged for review: the order stood, but the reward waits for a reviewer (review_referral).
            assert referral.pending_order_id is not None
            events = [_held(site, referral, referral.pending_order_id, now)]
            result = storage.commit(storage.LedgerChange(referral, version, _hold(referral), events=events))
            if result is storage.Commit.DONE:
                report.held += 1
                return events
        elif status == Status.PENDING and referral.window_ends_at and parse_time(referral.window_ends_at) <= now:
            settled, events = _earn_or_cap(site, referral, version, now)
            if settled is Status.EARNED:
                report.earned += 1
                return events
            if settled is Status.CAPPED:
                report.capped += 1
                return []
        elif status in (Status.REGISTERED, Status.REVERSED) and (
            deadline_of(rules, parse_time(referral.created_at)) <= now
        ):
            result = storage.commit(
                storage.LedgerChange(
                    referral,
                    version,
                    {
                        "status": Status.EXPIRED.value,
                        "reason": referral.reason or Reason.NO_QUALIFYING_ORDER.value,
                        "pending_order_id": None,
                        "due_shard": None,
                        "due_at": None,
                    },
                )
            )
            if result is storage.Commit.DONE:
                report.expired += 1
                return []
        else:
            return []  # not due any more (the index lags, or an order event moved it): nothing to do
        # The referral moved since the index showed it: read it again (strongly) and decide again.
        referral = storage.load_ledger(referral.referee_id).referral
    report.contended += 1  # still moving after all attempts: it stays due and the next run takes it
    return []


def _earn_or_cap(
    site: Site, referral: storage.ReferralItem, version: int, now: datetime, also: dict[str, Any] | None = None
) -> tuple[Status | None, list[storage.OutboxItem]]:
    """The one move that pays: PENDING (or HELD, released) to EARNED, with the month's counter under its cap,
    else to CAPPED. Each write is conditional on the version read; None when the referral moved since."""
    assert referral.pending_order_id is not None
    events = [_earned(site, referral, referral.pending_order_id, now)]
    settled = {"settled_at": iso(now), "due_shard": None, "due_at": None, **(also or {})}
    earned = {"status": Status.EARNED.value, "reason": None, "earned_order_id": referral.pending_order_id}
    result = storage.commit(
        storage.LedgerChange(referral, version, {**earned, **settled}, events=events, cap=_cap(referral, site.rewards))
    )
    if result is storage.Commit.DONE:
        return Status.EARNED, events
    if result is storage.Commit.CAPPED:
        capped = {"status": Status.CAPPED.value, "reason": Reason.MONTHLY_CAP_REACHED.value}
        if storage.commit(storage.LedgerChange(referral, version, {**capped, **settled})) is storage.Commit.DONE:
            return Status.CAPPED, []
    return None, []


def _cap(referral: storage.ReferralItem, rules: RewardRules) -> storage.CapCharge | None:
    if rules.monthly_cap <= 0:
        return None  # 0 turns the cap off
    assert referral.window_ends_at is not None
    # The month the window closed in, not the month the run happened: a late or repeated run counts the same.
    closed = parse_time(referral.window_ends_at)
    return storage.CapCharge(
        referral.referrer_id,
        closed.strftime("%Y-%m"),
        rules.monthly_cap,
        int((closed + CAP_RETENTION).timestamp()),
    )


# ---------- review: releasing or rejecting a flagged referral (docs/rewards.md, "Review") ----------

MAX_ID_LENGTH = 128


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
    decision = Decision.RELEASE if referral.review == Review.RELEASED else Decision.REJECT
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
        choice = Decision(decision)
    except ValueError:
        raise InvalidInput("decision", "INVALID_OPTION", "decision must be RELEASE or REJECT") from None
    done = Review.RELEASED if choice is Decision.RELEASE else Review.REJECTED
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
        if choice is Decision.RELEASE and referral.status == Status.HELD:
            settled, events = _earn_or_cap(site, referral, version, now, decided)
            if settled is None:
                continue  # it moved since we read it: read again, decide again
            reason = None if settled is Status.EARNED else Reason.MONTHLY_CAP_REACHED.value
            updates = {**decided, "status": settled.value, "reason": reason}
        else:
            updates = dict(decided)
            if choice is Decision.REJECT and referral.status not in (*SETTLED, Status.EXPIRED):
                ended = {"status": Status.REJECTED.value, "reason": referral.review_reason, "settled_at": iso(now)}
                updates.update(ended, due_shard=None, due_at=None)
            if storage.commit(storage.LedgerChange(referral, version, updates)) is not storage.Commit.DONE:
                continue
        outbox.publish(events)  # never raises: what it cannot publish, the reconciliation will
        for name, value in updates.items():
            setattr(referral, name, value)
        return _reviewed(referral)
    raise Busy()


# ---------- the customer's view ----------


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
    settings: Settings, referrer_id: str, offset: int, limit: int, known_total: int | None = None
) -> ReferralPage:
    """A referrer's friends, newest first, with each referral's status and why it did not earn (if so).

    Requests: one Query of the ByReferrer index; plus one BatchGetItem for the total when the caller does
    not already know it (the parent `customer` field does).
    """
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput("offset", "OUT_OF_RANGE", f"offset must be between 0 and {MAX_OFFSET}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput("limit", "OUT_OF_RANGE", f"limit must be between 1 and {MAX_PAGE_SIZE}")
    total = known_total
    if total is None:
        view = storage.load_customer_view(referrer_id)
        total = view.referral_count if view else 0
    if offset >= total:
        return ReferralPage([], total, False)
    found = list(storage.query_referrals(referrer_id, offset, limit))[offset : offset + limit]
    return ReferralPage([summary(r) for r in found], total, offset + len(found) < total)
