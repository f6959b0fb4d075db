"""The reward rules as pure functions (no AWS): which order qualifies, when it falls, what the state is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from referrals.config import RewardRules, parse_settings
from referrals.formats import iso, money, parse_time
from referrals.rewards import FactKind, OrderFact, Status, fold, project

RULES = RewardRules()
REGISTERED = datetime(2030, 1, 1, tzinfo=UTC)
START = REGISTERED + timedelta(hours=1)


def fact(kind: FactKind, order: str, days: float, amount: str | None = None, currency: str = "GBP", refund_id=None):
    return OrderFact(
        kind,
        order,
        "friend",
        START + timedelta(days=days),
        "event",
        Decimal(amount) if amount else None,
        currency,
        refund_id,
    )


def state(*facts: OrderFact, now_days: float = 1, expired: bool = False):
    return project(RULES, "GBP", REGISTERED, fold(facts).values(), START + timedelta(days=now_days), expired)


def test_the_first_order_of_at_least_the_minimum_in_the_sites_currency_is_pending():
    p = state(fact(FactKind.PLACED, "a", 0, "30.00"))
    assert (p.status, p.pending_order_id, p.window_ends_at) == (Status.PENDING, "a", START + timedelta(days=14))


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [("29.99", "GBP", "ORDER_BELOW_MINIMUM"), ("300.00", "EUR", "ORDER_CURRENCY_NOT_ACCEPTED")],
)
def test_an_order_that_cannot_qualify_leaves_it_registered_with_the_reason(amount, currency, reason):
    p = state(fact(FactKind.PLACED, "a", 0, amount, currency))
    assert (p.status, p.reason) == (Status.REGISTERED, reason)


def test_a_cancel_inside_the_window_reverses_and_one_after_does_not():
    placed = fact(FactKind.PLACED, "a", 0, "45.00")
    assert state(placed, fact(FactKind.CANCELLED, "a", 13.99)).status is Status.REVERSED
    assert state(placed, fact(FactKind.CANCELLED, "a", 14)).status is Status.PENDING


def test_refunds_in_the_window_count_in_the_sites_currency_only():
    placed = fact(FactKind.PLACED, "a", 0, "45.00")
    assert state(placed, fact(FactKind.REFUNDED, "a", 1, "15.00")).status is Status.PENDING  # 30.00 left
    under = state(placed, fact(FactKind.REFUNDED, "a", 1, "15.01"))
    assert (under.status, under.reason) == (Status.REVERSED, "ORDER_REFUNDED")
    assert state(placed, fact(FactKind.REFUNDED, "a", 1, "40.00", "EUR")).status is Status.PENDING
    assert state(placed, fact(FactKind.REFUNDED, "a", 15, "40.00")).status is Status.PENDING  # after the window


def test_when_the_pending_order_falls_the_next_standing_one_takes_over():
    p = state(
        fact(FactKind.PLACED, "a", 0, "45.00"),
        fact(FactKind.PLACED, "b", 3, "45.00"),
        fact(FactKind.CANCELLED, "a", 4),
    )
    assert (p.status, p.pending_order_id) == (Status.PENDING, "b")


def test_the_earliest_placed_order_is_pending_whatever_order_the_facts_came_in():
    later, earlier = fact(FactKind.PLACED, "late", 2, "45.00"), fact(FactKind.PLACED, "early", 1, "45.00")
    assert state(later, earlier).pending_order_id == state(earlier, later).pending_order_id == "early"


def test_a_cancel_kept_before_its_order_applies_once_the_order_is_known():
    cancel = fact(FactKind.CANCELLED, "a", 1)
    assert state(cancel).status is Status.REGISTERED
    assert state(cancel, fact(FactKind.PLACED, "a", 0, "45.00")).status is Status.REVERSED


def test_expiry_holds_unless_a_qualifying_order_turns_up():
    assert state(now_days=365).status is Status.EXPIRED
    assert state(expired=True).reason == "NO_QUALIFYING_ORDER"
    assert state(fact(FactKind.PLACED, "a", 300, "45.00"), expired=True).status is Status.PENDING


def test_a_refund_is_one_refund_however_often_it_is_delivered_unless_ids_say_otherwise():
    same = fact(FactKind.REFUNDED, "a", 1, "10.00")
    again = fact(FactKind.REFUNDED, "a", 2, "10.0")
    assert same.sort_key() == again.sort_key()
    assert (
        fact(FactKind.REFUNDED, "a", 1, "10.00", refund_id="r1").sort_key()
        != fact(FactKind.REFUNDED, "a", 1, "10.00", refund_id="r2").sort_key()
    )


def test_times_and_money_have_one_text_form():
    assert iso(datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) == "2030-01-02T03:04:05.678+00:00"
    assert parse_time("2030-01-02T03:04:05Z") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert money(Decimal("5")) == "5.00"


def test_reward_rules_come_from_the_site_settings():
    settings = parse_settings('{"sites": {"default": {"rewards": {"referrerCredit": "7.5", "returnWindowDays": 30}}}}')
    rules = settings.sites["default"].rewards
    assert rules.referrer_credit == Decimal("7.5") and rules.return_window_days == 30
    assert isinstance(rules.minimum_order, Decimal)


@pytest.mark.parametrize(
    "rewards",
    [{"minimumOrder": "-1"}, {"returnWindowDays": -1}, {"qualifyingDays": 0}, {"refereeDiscountPercent": 101}],
)
def test_nonsense_reward_rules_stop_the_start(rewards):
    with pytest.raises(ValueError, match="rewards"):
        parse_settings(json.dumps({"sites": {"default": {"rewards": rewards}}}))
