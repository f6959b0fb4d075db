"""The writes that move a referral: an order event recorded (apply_order_event), what time alone decides
settled by the scheduled reconciliation (reconcile), and the one move that pays (_earn_or_cap).

Each order event adds one fact and moves the referral in the same conditional transaction, so the same facts
give the same state whatever order, and however often, the events arrive (referrals.rewards.lifecycle says
which state). The reconciliation settles what time alone decides: a return window that closed, a qualifying
period that ended. A referral flagged for review (referrals.abuse) is HELD instead of earned when its window
closes, until a reviewer releases or rejects it (referrals.rewards.review). Nothing here reads the clock: "now"
is the order event's time, the scheduled run's, or the reviewer's request's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from referrals import outbox, storage
from referrals.config import RewardRules, Settings, Site
from referrals.errors import Busy
from referrals.formats import day, iso, parse_time
from referrals.rewards.events import _earned, _held, _qualified, _reversed
from referrals.rewards.lifecycle import (
    DECIDED,
    FactKind,
    Milestones,
    Order,
    OrderFact,
    Projection,
    Reason,
    Review,
    Status,
    _relevant,
    deadline_of,
    fall_reason,
    fold,
    milestones,
    project,
)

# Order facts are kept (TTL) until this long after the last moment they could still change an outcome.
FACT_RETENTION = timedelta(days=30)
# Cap counters are kept a little over a year, for audit.
CAP_RETENTION = timedelta(days=400)
_ATTEMPTS = 6


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
    site: str | None = None  # the referral's, for the programme's figures per site
    first_qualified: bool = False  # the friend's first qualifying order arrived with this event


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
        marks = milestones(rules, site.currency, registered_at, orders.values(), after)
        change = storage.LedgerChange(
            referral,
            int(referral.version or 0),
            {**_updates(referral, after, rules), "qualified_on": marks.qualified_on, "reversed_on": marks.reversed_on},
            facts=[_fact_item(fact, sort_key, rules, registered_at)],
            events=events,
            figures=_moved_figures(referral, marks),
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
            referral.site,
            first_qualified=referral.qualified_on is None and marks.qualified_on is not None,
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


def _moved_figures(referral: storage.ReferralItem, marks: Milestones) -> list[storage.FigureChange]:
    """What the programme's figures lose and gain when a referral's milestones move (a day changes, one appears or
    goes): written with the move, so they stay the sum of every referral's milestones."""
    changes: list[storage.FigureChange] = []
    for figure, before, after in (
        ("firstQualifyingOrders", referral.qualified_on, marks.qualified_on),
        ("rewardsReversed", referral.reversed_on, marks.reversed_on),
    ):
        if before != after:
            if before:
                changes.append(storage.FigureChange(referral.site, before, figure, -1))
            if after:
                changes.append(storage.FigureChange(referral.site, after, figure, 1))
    return changes


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
    earned_by_site: dict[str, int] = field(default_factory=dict)  # the programme's figures per site


# Events published together by the reconciliation: a BatchWriteItem's worth of outbox deletes (25), which is
# also whole PutEvents requests (10 each) but the last.
PUBLISH_BATCH = 25


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

    Requests: per shard one Query per page (and one when nothing is due), and one BatchGetItem for a page that
    shows outbox records (confirming they still wait: an index may lag); per referral one TransactWriteItems
    (earn: referral, monthly counter, event; hold: referral, event) or one UpdateItem (expire); one PutEvents
    per 10 events and one BatchWriteItem per 25 published, the events gathered across pages and shards (with
    64 shards most pages hold an item or two: one PutEvents per page would be one per shard).
    """
    report = ReconcileReport()
    until = iso(now)
    events: list[storage.OutboxItem] = []

    def publish() -> None:
        sent = outbox.publish(events)
        report.published += sent.published
        report.unpublished += sent.unpublished
        events.clear()

    for shard in range(storage.DUE_SHARDS):
        start: dict[str, Any] | None = None
        while True:
            if not keep_going():
                report.complete = False  # the next run starts again from the oldest due item
                publish()
                return report
            items, start = storage.due_page(shard, until, start, page_size)
            report.due += len(items)
            # The index may still show an outbox record published a moment ago: only those the table still holds
            # are published again (one strong read for the page's, and none when it shows none).
            waiting = storage.still_in_outbox([item for item in items if isinstance(item, storage.OutboxItem)])
            events.extend(waiting)
            report.republished += len(waiting)
            for item in items:
                if not isinstance(item, storage.OutboxItem):
                    events.extend(_settle(settings, item, now, report))
            # Committed already: an event not yet published when a run fails stays in the outbox, due, and the
            # next run publishes it.
            if len(events) >= PUBLISH_BATCH:
                publish()
            if start is None:
                break
    publish()
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
            events = [_held(paying_site(settings, referral), referral, referral.pending_order_id, now)]
            result = storage.commit(storage.LedgerChange(referral, version, _hold(referral), events=events))
            if result is storage.Commit.DONE:
                report.held += 1
                return events
        elif status == Status.PENDING and referral.window_ends_at and parse_time(referral.window_ends_at) <= now:
            settled, events = _earn_or_cap(paying_site(settings, referral), referral, version, now)
            if settled is Status.EARNED:
                report.earned += 1
                report.earned_by_site[referral.site] = report.earned_by_site.get(referral.site, 0) + 1
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


def paying_site(settings: Settings, referral: storage.ReferralItem) -> Site:
    """The site whose rules and currency the referrer's credit follows: the referrer's own. It differs from the
    referral's (the friend's, whose rules decide which orders qualify) only for a cross-site referral."""
    site = settings.sites.get(referral.referrer_site or referral.site) or settings.sites.get(referral.site)
    assert site is not None  # the caller found the referral's site
    return site


def _hold(referral: storage.ReferralItem) -> dict[str, Any]:
    """PENDING to HELD: off the due index (nothing but a reviewer moves it now), the flag's reason shown."""
    return {"status": Status.HELD.value, "reason": referral.review_reason, "due_shard": None, "due_at": None}


def _earn_or_cap(
    site: Site, referral: storage.ReferralItem, version: int, now: datetime, also: dict[str, Any] | None = None
) -> tuple[Status | None, list[storage.OutboxItem]]:
    """The one move that pays: PENDING (or HELD, released) to EARNED, with the month's counter under its cap,
    else to CAPPED. Each write is conditional on the version read; None when the referral moved since."""
    assert referral.pending_order_id is not None
    events = [_earned(site, referral, referral.pending_order_id, now)]
    settled = {"settled_at": iso(now), "due_shard": None, "due_at": None, **(also or {})}
    earned = {"status": Status.EARNED.value, "reason": None, "earned_order_id": referral.pending_order_id}
    earned_today = storage.FigureChange(referral.site, day(now), "rewardsEarned")
    result = storage.commit(
        storage.LedgerChange(
            referral,
            version,
            {**earned, **settled},
            events=events,
            cap=_cap(referral, site.rewards),
            figures=[earned_today],
        )
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
