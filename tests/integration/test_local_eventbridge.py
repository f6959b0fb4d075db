"""The stand-in's EventBridge (devserver/eventbridge.py) in-process: routing by the template's rules to their
queues, the envelope, the queue's retries with backoff on the clock, and the dead-letter queue after a day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from devserver.clock import CLOCK
from devserver.eventbridge import EventRouter
from devserver.lambdas import LocalFunction
from referrals import rewards
from referrals.rewards import orchestration
from tests.integration.rewards_helpers import referral, referred_friend

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def router(aws_env) -> EventRouter:
    functions = {name: LocalFunction(spec) for name, spec in aws_env.functions().items()}
    return EventRouter(functions, list(aws_env.of_type("AWS::Events::EventBus")))


def _order(friend: str, at: datetime | None = None, **entry) -> dict:
    detail = {"orderId": "o-1", "customerId": friend, "total": {"amount": "45.00", "currency": "GBP"}}
    base = {"Source": "commerce.orders", "DetailType": "OrderPlaced", "Detail": json.dumps(detail)}
    if at is not None:
        base["Time"] = at.isoformat()
    return {**base, **entry}


def test_an_entry_reaches_the_function_as_an_eventbridge_envelope(router, monkeypatch):
    seen = []
    original = orchestration.apply_order_event
    monkeypatch.setattr(orchestration, "apply_order_event", lambda s, fact: seen.append(fact) or original(s, fact))
    pair = referred_friend()
    at = pair.registered_at + timedelta(minutes=1)
    status, answer = router.put_events({"Entries": [_order(pair.friend, at)]})
    assert status == 200 and answer["FailedEntryCount"] == 0
    (fact,) = seen
    # The entry's Time became the envelope's `time` (to the second), and the EventId its `id`
    assert fact.at == at.replace(microsecond=0)
    assert fact.event_id == answer["Entries"][0]["EventId"]
    assert referral(pair.friend).status == "PENDING"


def test_an_entry_without_time_is_stamped_now(router, monkeypatch):
    seen = []
    monkeypatch.setattr(
        orchestration,
        "apply_order_event",
        lambda s, fact: seen.append(fact) or rewards.Applied(rewards.Outcome.NOT_REFERRED),
    )
    before = datetime.now(UTC).replace(microsecond=0)
    router.put_events({"Entries": [_order("nobody")]})
    assert before <= seen[0].at <= datetime.now(UTC)


def test_only_the_rules_of_the_entrys_bus_match(router, monkeypatch):
    calls = []
    monkeypatch.setattr(
        orchestration, "apply_order_event", lambda *a: calls.append(a) or rewards.Applied(rewards.Outcome.NOT_REFERRED)
    )
    _, answer = router.put_events(
        {
            "Entries": [
                _order("x", EventBusName="ReferralsEventBus"),  # the order rule listens on the default bus
                _order("x", EventBusName="arn:aws:events:eu-west-1:123456789012:event-bus/default"),
                _order("x", EventBusName="nowhere"),
                _order("x", Source="commerce.other"),
            ]
        }
    )
    assert len(calls) == 1
    assert [e.get("ErrorCode") for e in answer["Entries"]] == [None, None, "ResourceNotFoundException", None]


def test_a_handler_that_keeps_failing_is_retried_for_a_day_then_dead_lettered(router, monkeypatch):
    attempts = []

    def broken(*_args):
        attempts.append(1)
        raise RuntimeError("the store is down")

    monkeypatch.setattr(orchestration, "apply_order_event", broken)
    _, answer = router.put_events({"Entries": [_order("x"), _order("y")]})
    # EventBridge handed both to the queue; the function tried each once (one batch) and reported both failed
    assert answer["FailedEntryCount"] == 0
    assert len(attempts) == 2
    assert router.dead_letters() == []
    # Nothing comes back before the first backoff (1 minute) ends, then again at 2, 4, 8 and every 15 minutes
    CLOCK.advance(59)
    router.mappings.run_until_idle()
    assert len(attempts) == 2
    CLOCK.advance(2)
    router.mappings.run_until_idle()
    assert len(attempts) == 4
    elapsed = 61.0
    while elapsed < 23 * 3600:  # still trying after 23 hours
        CLOCK.advance(900)
        elapsed += 900
        router.mappings.run_until_idle()
    assert router.dead_letters() == []
    for _ in range(12):  # the 100th receive comes at 24 h; 15 minutes later SQS moves them
        CLOCK.advance(900)
        router.mappings.run_until_idle()
    assert len(attempts) == 200  # maxReceiveCount 100, each
    dead = router.dead_letters()
    assert len(dead) == 2
    assert {d["body"]["detail"]["customerId"] for d in dead} == {"x", "y"}
    assert dead[0]["queue"] == "OrderEventsDeadLetterQueue" and dead[0]["body"]["source"] == "commerce.orders"
    # Read once, kept: asking again lists the same, and nothing new
    assert router.dead_letters() == dead
