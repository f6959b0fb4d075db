"""The reconciliation on moto: the return window, the monthly cap, expiry, the outbox, and its cost."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from devserver.lambdas import FunctionError, LocalFunction
from devserver.stack import Stack
from referrals import formats, outbox, rewards, storage
from referrals.config import load_settings
from tests.conftest import new_id
from tests.integration.rewards_helpers import (
    Bus,
    cancelled,
    deliver,
    placed,
    reconcile,
    referral,
    referred_friend,
)

pytestmark = pytest.mark.usefixtures("aws_env")


def test_the_reward_waits_for_the_window_then_is_earned_once():
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    # One second before the window closes: nothing
    assert reconcile(at + timedelta(days=14) - timedelta(seconds=1))["earned"] == 0
    assert bus.rewards(pair.friend) == []
    # When it has closed: earned, exactly once, however often the run repeats
    assert reconcile(at + timedelta(days=14))["earned"] == 1
    assert reconcile(at + timedelta(days=14))["earned"] == 0
    assert reconcile(at + timedelta(days=15))["earned"] == 0
    (reward,) = bus.rewards(pair.friend)
    assert reward["detail"]["referrerId"] == pair.referrer
    assert reward["detail"]["refereeId"] == pair.friend
    assert reward["detail"]["orderId"] == "o-1"
    assert reward["detail"]["reward"] == {"type": "ACCOUNT_CREDIT", "amount": "5.00", "currency": "GBP"}
    assert reward["detail"]["idempotencyKey"] == f"ReferralRewardEarned:{pair.friend}"
    item = referral(pair.friend)
    assert item.status == "EARNED" and item.earned_order_id == "o-1" and item.due_at is None


def test_a_cancel_after_the_window_does_not_reverse_even_before_the_run():
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    # The order stood through its 14 days; the cancel comes on day 15, before any run
    assert deliver(cancelled("o-1", pair.friend, at + timedelta(days=15)))["status"] == "PENDING"
    reconcile(at + timedelta(days=15, hours=1))
    assert len(bus.rewards(pair.friend)) == 1


def test_a_cancel_on_the_last_day_of_the_window_reverses():
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    deliver(cancelled("o-1", pair.friend, at + timedelta(days=14) - timedelta(seconds=1)))
    reconcile(at + timedelta(days=15))
    assert bus.rewards(pair.friend) == []
    assert referral(pair.friend).status == "REVERSED"


@pytest.fixture
def capped_functions(monkeypatch):
    """The order and reconcile functions of a site whose referrers may earn two rewards a month."""
    monkeypatch.setenv("SITES_CONFIG", json.dumps({"sites": {"default": {"rewards": {"monthlyCap": 2}}}}))
    functions = Stack().functions()
    return LocalFunction(functions["OrderEventsFunction"]), LocalFunction(functions["ReconcileFunction"])


def test_the_monthly_cap_holds_and_says_why(capped_functions):
    orders, runs = capped_functions
    bus = Bus()
    first = referred_friend()
    friends = [first] + [referred_friend(first.referrer, first.code) for _ in range(3)]
    at = max(f.registered_at for f in friends) + timedelta(hours=1)
    # Given three friends whose orders' windows close in the same month
    for pair in friends[:3]:
        orders.invoke(placed("o-1", pair.friend, at))
    # When the windows close
    report = runs.invoke({"time": (at + timedelta(days=14)).isoformat()})
    # Then two earn and the third is capped, with the reason
    assert (report["earned"], report["capped"]) == (2, 1)
    assert len(bus.rewards()) == 2
    statuses = sorted(referral(p.friend).status for p in friends[:3])
    assert statuses == ["CAPPED", "EARNED", "EARNED"]
    capped = next(p for p in friends[:3] if referral(p.friend).status == "CAPPED")
    assert referral(capped.friend).reason == "MONTHLY_CAP_REACHED"
    # And a fourth friend whose window closes the next month earns again
    orders.invoke(placed("o-1", friends[3].friend, at + timedelta(days=32)))
    assert runs.invoke({"time": (at + timedelta(days=46)).isoformat()})["earned"] == 1


def test_the_cap_holds_when_runs_race(capped_functions):
    orders, runs = capped_functions
    first = referred_friend()
    friends = [first] + [referred_friend(first.referrer, first.code) for _ in range(5)]
    at = max(f.registered_at for f in friends) + timedelta(hours=1)
    for pair in friends:
        orders.invoke(placed("o-1", pair.friend, at))
    when = {"time": (at + timedelta(days=14)).isoformat()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(lambda _: runs.invoke(when), range(4)))
    assert sum(r["earned"] for r in reports) == 2
    assert sorted(referral(p.friend).status for p in friends).count("EARNED") == 2


def test_a_referral_with_no_qualifying_order_expires_and_says_why():
    pair = referred_friend()
    deadline = pair.registered_at + timedelta(days=365)
    assert reconcile(deadline - timedelta(seconds=1))["expired"] == 0
    assert reconcile(deadline)["expired"] == 1
    item = referral(pair.friend)
    assert (item.status, item.reason, item.due_at) == ("EXPIRED", "NO_QUALIFYING_ORDER", None)


def test_an_expired_referral_keeps_the_reason_its_order_fell():
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    deliver(placed("o-1", pair.friend, at))
    deliver(cancelled("o-1", pair.friend, at + timedelta(days=1)))
    reconcile(pair.registered_at + timedelta(days=366))
    assert (referral(pair.friend).status, referral(pair.friend).reason) == ("EXPIRED", "ORDER_CANCELLED")


def test_an_order_placed_in_time_but_delivered_after_expiry_still_earns():
    bus = Bus()
    pair = referred_friend()
    deadline = pair.registered_at + timedelta(days=365)
    reconcile(deadline + timedelta(minutes=30))
    assert referral(pair.friend).status == "EXPIRED"
    # The order was placed a minute before the deadline; EventBridge delivered it late
    assert deliver(placed("o-1", pair.friend, deadline - timedelta(minutes=1)))["status"] == "PENDING"
    reconcile(deadline + timedelta(days=14))
    assert len(bus.rewards(pair.friend)) == 1


def test_a_crash_between_the_state_change_and_the_publish_loses_nothing(monkeypatch):
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    event = placed("o-1", pair.friend, at)

    def die(items):
        if items:
            raise SystemError("the function died after its transaction")
        return outbox.Published()

    # Given the order function dies right after its transaction
    monkeypatch.setattr(outbox, "publish", die)
    with pytest.raises(FunctionError):
        deliver(event)
    monkeypatch.undo()
    # Then the state change and its event record are both there, and nothing was published
    assert referral(pair.friend).status == "PENDING"
    assert bus.events("ReferralQualified", pair.friend) == []
    # When Lambda retries the event, it is a duplicate: still one record
    assert deliver(event)["outcome"] == "DUPLICATE"
    # And the next run publishes the recorded event once
    assert reconcile(at + timedelta(hours=1))["republished"] == 1
    assert len(bus.events("ReferralQualified", pair.friend)) == 1
    assert reconcile(at + timedelta(hours=2))["republished"] == 0

    # Given the reconciliation dies right after earning
    monkeypatch.setattr(outbox, "publish", die)
    with pytest.raises(FunctionError):
        reconcile(at + timedelta(days=14, hours=1))
    monkeypatch.undo()
    assert referral(pair.friend).status == "EARNED"
    assert bus.rewards(pair.friend) == []
    # When the next run comes, the reward event goes out once, with its stable key
    reconcile(at + timedelta(days=14, hours=2))
    reconcile(at + timedelta(days=14, hours=3))
    (reward,) = bus.rewards(pair.friend)
    assert reward["detail"]["idempotencyKey"] == f"ReferralRewardEarned:{pair.friend}"


def test_events_eventbridge_refuses_stay_in_the_outbox_until_accepted(faults):
    bus = Bus()
    pair = referred_friend()
    at = pair.registered_at + timedelta(hours=1)
    # PutEvents fails on every attempt (Query, TransactWriteItems, then PutEvents: the third call)
    faults.arm(call=3, kind="internal", operation="PutEvents")
    answer = deliver(placed("o-1", pair.friend, at))
    faults.disarm()
    assert answer["outcome"] == "RECORDED" and answer["published"] == 0
    assert bus.events("ReferralQualified", pair.friend) == []
    reconcile(at + timedelta(minutes=10))
    assert len(bus.events("ReferralQualified", pair.friend)) == 1


def test_the_run_takes_its_now_from_the_event():
    assert reconcile(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))["time"] == "2031-05-06T07:08:09.000+00:00"
    function = __import__("tests.integration.helpers").integration.helpers.function("ReconcileFunction")
    with pytest.raises(FunctionError) as refused:
        function.invoke({"time": "next tuesday"})
    assert refused.value.error_type == "ValueError"


# ---------- cost follows the work due, not the table ----------


def _seed(count: int, status: str, due: datetime | None, referrer: str | None = None) -> list[str]:
    """Referral items written straight to the table (a backlog to measure the run on, not a flow to test)."""
    created = datetime(2030, 1, 1, tzinfo=UTC)
    ids = []
    with storage.ReferralItem.batch_write() as batch:
        for _ in range(count):
            friend = new_id("friend")
            ids.append(friend)
            pk, sk = storage.ReferralItem.key_for(friend)
            item = storage.ReferralItem(
                pk,
                sk,
                referee_id=friend,
                referrer_id=referrer or new_id("referrer"),
                site="default",
                code="ABCD2345",
                status=status,
                friend_name="Fran F.",
                created_at=formats.iso(created),
            )
            if status == "PENDING":
                item.pending_order_id = "o-1"
                item.window_ends_at = formats.iso(due or created)
            if due is not None:
                item.due_shard = storage.due_shard(friend)
                item.due_at = formats.iso(due)
            batch.save(item)
    return ids


def _measure(calls, now: datetime, page_size: int) -> tuple[rewards.ReconcileReport, dict[str, int]]:
    calls.reset()
    report = rewards.reconcile(load_settings(), now, page_size=page_size)
    return report, dict(calls.count())


def test_a_large_backlog_costs_what_is_due_not_what_is_stored(calls, monkeypatch):
    # (Sizes stay modest: moto copies the whole table for every transaction item; AWS does not.)
    monkeypatch.setenv("SITES_CONFIG", json.dumps({"sites": {"default": {"rewards": {"monthlyCap": 0}}}}))
    now = datetime(2030, 3, 1, tzinfo=UTC)
    due_at = now - timedelta(hours=1)
    # Given 40 rewards due, among referrals not due (later windows, or settled and off the index)
    due = _seed(40, "PENDING", due_at)
    _seed(60, "PENDING", now + timedelta(days=3))
    _seed(60, "EARNED", None)
    # When the run pages through them, 6 at a time
    report, requests = _measure(calls, now, page_size=6)
    # Then each due item costs one transaction; reads are pages of the index; outbox writes are batched
    assert report.earned == 40 and report.complete
    assert requests["TransactWriteItems"] == 40
    pages = requests["Query"]
    assert math.ceil(40 / 6) <= pages <= math.ceil(40 / 6) + 2 * storage.DUE_SHARDS
    assert math.ceil(40 / 10) <= requests["PutEvents"] <= pages  # at most 10 to a request, one per page
    assert requests["BatchWriteItem"] <= pages
    # gathered across pages and shards (most of the 64 shards' pages hold an item or none), published 25 or
    # more at a time but the last: two publishes for 40 events, not one per page
    assert requests["PutEvents"] <= math.ceil(40 / 10) + 2 and requests["BatchWriteItem"] <= math.ceil(40 / 25) + 1
    assert set(requests) == {"Query", "TransactWriteItems", "PutEvents", "BatchWriteItem"}
    assert all(referral(f).status == "EARNED" for f in due)
    # And with four times as much stored that is not due, the same backlog costs the same
    _seed(480, "PENDING", now + timedelta(days=30))
    _seed(40, "PENDING", due_at + timedelta(days=1))
    again, requests_again = _measure(calls, now + timedelta(days=1), page_size=6)
    assert again.earned == 40
    assert requests_again["TransactWriteItems"] == 40
    assert abs(requests_again["Query"] - pages) <= storage.DUE_SHARDS
    # And a run with nothing due reads one empty page per shard, nothing else
    _, idle = _measure(calls, now + timedelta(days=1), page_size=6)
    assert idle == {"Query": storage.DUE_SHARDS}


def test_a_run_out_of_time_stops_between_pages_and_the_next_finishes():
    now = datetime(2030, 3, 1, tzinfo=UTC)
    _seed(30, "PENDING", now - timedelta(hours=1))
    # Time for about half the shards' pages: thirty friends hash over all of them, so some are left
    budget = iter([True] * (storage.DUE_SHARDS // 2))
    first = rewards.reconcile(load_settings(), now, keep_going=lambda: next(budget, False), page_size=5)
    assert not first.complete and 0 < first.earned < 30
    second = rewards.reconcile(load_settings(), now, page_size=5)
    assert second.complete and first.earned + second.earned == 30


def test_two_runs_at_once_earn_each_reward_once():
    bus = Bus()
    now = datetime(2030, 3, 1, tzinfo=UTC)
    friends = _seed(30, "PENDING", now - timedelta(hours=1))  # thirty referrers: no cap in the way
    with ThreadPoolExecutor(max_workers=3) as pool:
        reports = list(pool.map(lambda _: rewards.reconcile(load_settings(), now, page_size=10), range(3)))
    assert sum(r.earned for r in reports) == 30
    rewarded = [e["detail"]["refereeId"] for e in bus.rewards()]
    assert sorted(rewarded) == sorted(friends)


def test_an_outbox_record_the_index_still_shows_after_it_was_published_goes_out_once(monkeypatch):
    # Given a friend's ReferralRegistered published and its outbox record deleted, which the due index (eventually
    # consistent: it may lag the table) still shows, as a run the moment after can see it
    bus = Bus()
    pair = referred_friend()
    published = bus.events("ReferralRegistered", pair.friend)
    assert len(published) == 1
    key = published[0]["detail"]["idempotencyKey"]
    ghost = outbox.record(pair.friend, "ReferralRegistered", key, published[0]["detail"], pair.registered_at)
    assert storage.still_in_outbox([ghost]) == []  # gone from the table
    shown = storage.due_page

    def lagging_index(shard: int, until: str, start, limit: int):
        items, following = shown(shard, until, start, limit)
        return ([ghost, *items] if shard == ghost.due_shard and start is None else items), following

    monkeypatch.setattr(storage, "due_page", lagging_index)
    # When the reconciliation runs
    report = reconcile(pair.registered_at + timedelta(days=1))
    # Then the table is asked (one strong read), and the event is not published a second time
    assert report["republished"] == 0
    assert len(bus.events("ReferralRegistered", pair.friend)) == 1
