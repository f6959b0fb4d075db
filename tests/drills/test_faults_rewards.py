"""Faults at every AWS call of an order event and of a reconciliation run: the handler fails cleanly (so
EventBridge or the schedule delivers again) or succeeds; delivered again, it converges; in the end exactly
one reward is earned and published, none lost and none doubled."""

from __future__ import annotations

import contextlib

import pytest

from tests.faults import KINDS, LOST
from tests.integration.rewards_helpers import Bus, deliver, later, placed, reconcile, referral, referred_friend

pytestmark = pytest.mark.usefixtures("aws_env")


def _rewards_published(bus: Bus, friend: str) -> int:
    """Distinct rewards on the bus for this friend (a republished event carries the same key)."""
    return len({e["detail"].get("idempotencyKey") or e["id"] for e in bus.rewards(friend)})


@pytest.mark.parametrize(("call", "kind"), [(call, kind) for call in range(1, 5) for kind in (*KINDS, LOST)])
def test_a_fault_in_a_qualifying_order_event_converges_to_one_reward(call, kind, faults):
    pair = referred_friend()
    event = placed("ORD-F", pair.friend, later(pair.registered_at, hours=1))
    bus = Bus()
    # Given call N of the order event keeps failing
    faults.arm(call, kind)
    with contextlib.suppress(Exception):  # a raised handler is what makes EventBridge deliver again
        deliver(event)
    faults.disarm()
    # When EventBridge delivers the same event again, and the schedule runs after the window (twice)
    deliver(event)
    window_passed = later(pair.registered_at, days=16)
    reconcile(window_passed)
    reconcile(window_passed)
    # Then exactly one reward is earned and published
    assert referral(pair.friend).status == "EARNED"
    assert _rewards_published(bus, pair.friend) == 1


@pytest.mark.parametrize("kind", (*KINDS, LOST))
def test_a_fault_at_each_call_of_a_reconciliation_run_loses_and_doubles_nothing(kind, faults):
    pair = referred_friend()
    deliver(placed("ORD-R", pair.friend, later(pair.registered_at, hours=1)))
    bus = Bus()
    run_at = later(pair.registered_at, days=16)
    for call in range(1, 7):  # a run with one reward due makes a handful of calls: fail each in turn
        faults.arm(call, kind)
        with contextlib.suppress(Exception):  # the schedule runs again at its next tick
            reconcile(run_at)
        faults.disarm()
    # The schedule's next tick, an hour on: an event committed by a run whose answer was lost (LOST) waits in the
    # outbox for its grace period before a run republishes it.
    reconcile(later(run_at, hours=1))
    assert referral(pair.friend).status == "EARNED"
    assert _rewards_published(bus, pair.friend) == 1
