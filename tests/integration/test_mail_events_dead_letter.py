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


@pytest.mark.parametrize("body", ['"not an object"', '{"detail-type": "Email Bounced"}', '{"detail": {}, "time": 7}'])
def test_a_malformed_mail_event_is_dead_lettered_at_once_not_retried_for_a_day(aws_env, body):
    import boto3

    from devserver.stack import REGION

    function = LocalFunction(aws_env.functions()["MailEventsFunction"])
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.get_queue_url(QueueName="MailEventsQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    (message,) = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"])["Messages"]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:MailEventsQueue",
        "awsRegion": REGION,
    }
    # When the function takes it (IAM enforced: it may send to its own dead-letter queue)
    answer = function.invoke({"Records": [record]})
    # Then the record is done (no retry can mend it) and it waits in the dead-letter queue with its reason
    assert answer == {"batchItemFailures": []}
    dead = sqs.get_queue_url(QueueName="MailEventsDeadLetterQueue")["QueueUrl"]
    (letter,) = sqs.receive_message(QueueUrl=dead, MessageAttributeNames=["All"])["Messages"]
    assert letter["MessageAttributes"]["Reason"]["StringValue"] == "MALFORMED"
    assert json.loads(letter["Body"]) == json.loads(body)
