"""A bounce or complaint the suppression function keeps failing on is retried from MailEventsQueue for a day,
then waits in MailEventsDeadLetterQueue, through the stand-in's EventBridge routed by template.yaml."""

from __future__ import annotations

import json

import pytest

from devserver.clock import CLOCK
from devserver.eventbridge import EventRouter
from devserver.lambdas import LocalFunction
from referrals import invites
from tests.conftest import load_event

pytestmark = pytest.mark.usefixtures("aws_env")


def test_a_bounce_that_keeps_failing_is_dead_lettered_not_dropped(aws_env, monkeypatch):
    functions = {name: LocalFunction(spec) for name, spec in aws_env.functions().items()}
    router = EventRouter(functions, list(aws_env.of_type("AWS::Events::EventBus")))
    attempts = []

    def broken(*_args):
        attempts.append(1)
        raise RuntimeError("the store is down")

    monkeypatch.setattr(invites, "suppress_from_mail_event", broken)
    bounce = load_event("ses-bounce.json")
    entry = {"Source": "aws.ses", "DetailType": bounce["detail-type"], "Detail": json.dumps(bounce["detail"])}
    _, answer = router.put_events({"Entries": [entry]})
    assert answer["FailedEntryCount"] == 0
    assert len(attempts) == 1 and router.dead_letters() == []
    for _ in range(4 * 25):  # a day and a quarter, in 15-minute steps
        CLOCK.advance(900)
        router.mappings.run_until_idle()
    assert len(attempts) == 100  # the queue's maxReceiveCount
    (dead,) = router.dead_letters()
    assert dead["queue"] == "MailEventsDeadLetterQueue"
    assert dead["body"]["source"] == "aws.ses" and dead["body"]["detail-type"] == "Email Bounced"
