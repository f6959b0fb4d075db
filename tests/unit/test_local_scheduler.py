"""The stand-in's schedules (devserver/scheduler.py): which functions run on the clock, with what event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devserver.lambdas import LocalFunction
from devserver.scheduler import Scheduler, period, scheduled_event
from devserver.stack import FunctionEvent, Stack


def test_rate_expressions_and_nothing_else_have_a_period():
    assert period("rate(1 hour)") == timedelta(hours=1)
    assert period("rate(15 minutes)") == timedelta(minutes=15)
    assert period("rate(2 days)") == timedelta(days=2)
    assert period("cron(0 * * * ? *)") is None


def test_the_reconciliation_runs_hourly_with_the_scheduled_time_in_its_input():
    functions = {name: LocalFunction(spec) for name, spec in Stack().functions().items()}
    jobs = {function.spec.logical_id: (function, event, every) for function, event, every in Scheduler(functions).jobs}
    assert set(jobs) == {"ReconcileFunction", "ApiKeyKeeperFunction"}
    assert jobs["ApiKeyKeeperFunction"][2] == timedelta(days=1)  # the public key's expiry moved ahead daily
    function, event, every = jobs["ReconcileFunction"]
    assert every == timedelta(hours=1)
    at = datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert scheduled_event(function, event, at) == {"time": "2031-02-03T04:05:06Z"}


def test_a_schedule_rule_without_input_gets_the_scheduled_event_envelope():
    function = LocalFunction(Stack().functions()["ReconcileFunction"])
    envelope = scheduled_event(
        function, FunctionEvent("Schedule", expression="rate(1 hour)"), datetime(2031, 1, 1, tzinfo=UTC)
    )
    assert envelope["detail-type"] == "Scheduled Event" and envelope["time"] == "2031-01-01T00:00:00Z"
