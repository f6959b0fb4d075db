"""The lifecycle property (test_lifecycle_property.py), for a referral flagged for review: whatever the order
events do, and however they arrive, it never pays unreleased; released at any moment (or twice), it pays at
most once and the very reward the unflagged lifecycle would have paid (the same oracle, written apart)."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import load_event, new_id
from tests.integration.helpers import function
from tests.integration.rewards_helpers import Bus, deliver, reconcile, referral
from tests.integration.test_lifecycle_property import _forget, delivery_sequence, histories, linked_friend, oracle

pytestmark = pytest.mark.usefixtures("aws_env", "stale_reads")  # reads as DynamoDB serves them


def _release(friend: str) -> dict:
    review = copy.deepcopy(load_event("review-referral.json"))
    review["arguments"] = {"refereeId": friend, "decision": "RELEASE"}
    answer = function("ReviewFunction").invoke(review)
    assert "error" not in answer, answer
    return answer["data"]


@settings(
    max_examples=int(os.environ.get("REWARDS_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(), data=st.data())
def test_a_flagged_referral_pays_only_once_released_and_then_the_right_reward(history, data):
    orders, delivery, runs = history
    bus = Bus()
    friend = new_id("friend")
    registered = datetime(2031, 1, 1, tzinfo=UTC)
    start = registered + timedelta(hours=1)
    # flagged, as registration writes a sign-up past the velocity limit
    linked_friend(friend, registered, review="FLAGGED", review_reason="VELOCITY")

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=minute)

    sequence = delivery_sequence(orders, delivery, runs, friend, start)
    # A reviewer releases it at any step (or only after every run below), or twice
    releases = data.draw(st.lists(st.integers(0, len(sequence)), max_size=2), label="releases at")
    for position in sorted(releases, reverse=True):
        sequence.insert(position, ("release", None))

    for kind, item in sequence:
        if kind == "event":
            assert deliver(item[1])["outcome"] in {"RECORDED", "DUPLICATE", "SETTLED"}
        elif kind == "run":
            reconcile(at(item), settle=False)  # a run racing the delivery before it: the index may lag
        else:
            _release(friend)
    reconcile(registered + timedelta(days=400))
    reconcile(registered + timedelta(days=400))

    expected = oracle(orders)
    final = referral(friend)
    if not releases:
        # Never released: never paid. The reward that would have been is held, on the right order, and said so
        event("held" if expected else "does not earn (unreleased)")
        assert bus.rewards(friend) == []
        assert final.status == ("HELD" if expected else "EXPIRED")
        held = bus.events("ReferralRewardHeld", friend)
        assert [e["detail"]["orderId"] for e in held] == ([expected] if expected else [])
        if expected:
            assert final.pending_order_id == expected and final.reason == "VELOCITY"
        # Then released now, as a reviewer would
        _release(friend)
        final = referral(friend)
    else:
        event("earns once released" if expected else "does not earn (released)")
    earned = bus.rewards(friend)
    assert [e["detail"]["orderId"] for e in earned] == ([expected] if expected else [])
    assert (final.status == "EARNED") == (expected is not None)
    if expected:
        assert final.earned_order_id == expected and final.review == "RELEASED"
    # A release again changes nothing and pays nothing more
    _release(friend)
    assert len(bus.rewards(friend)) == len(earned)
    _forget(friend)
