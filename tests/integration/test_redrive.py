"""The redrive (devserver/redrive.py) on the stand-in: dead letters back to their queue, then applied once."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from devserver.eventbridge import EventRouter
from devserver.lambdas import LocalFunction
from devserver.redrive import redrive
from devserver.stack import REGION
from tests.integration.rewards_helpers import placed, referral, referred_friend

pytestmark = pytest.mark.usefixtures("aws_env")


def test_dead_lettered_order_events_redriven_are_applied(aws_env):
    functions = {name: LocalFunction(spec) for name, spec in aws_env.functions().items()}
    router = EventRouter(functions, list(aws_env.of_type("AWS::Events::EventBus")), aws_env)
    pair = referred_friend()
    # Given an order event that sat a day in the dead-letter queue (put there as SQS's redrive puts it)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_url(QueueName="OrderEventsDeadLetterQueue")["QueueUrl"]
    sqs.send_message(
        QueueUrl=dlq, MessageBody=json.dumps(placed("o-1", pair.friend, pair.registered_at + timedelta(hours=1)))
    )
    queue = sqs.get_queue_url(QueueName="OrderEventsQueue")["QueueUrl"]
    # When it is redriven, and the queue's mapping runs
    assert redrive(sqs, "OrderEventsDeadLetterQueue", "OrderEventsQueue") == 1
    router.mappings.run_until_idle()
    # Then it is applied, and both queues are empty
    assert referral(pair.friend).status == "PENDING"
    assert router.dead_letters() == []
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)


def test_a_malformed_dead_letter_is_left_for_a_person_and_one_run_moves_only_what_was_there(aws_env):
    # Given a malformed event (no retry can mend it) and a good one in the dead-letter queue
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_url(QueueName="OrderEventsDeadLetterQueue")["QueueUrl"]
    malformed = {"Reason": {"DataType": "String", "StringValue": "MALFORMED"}}
    sqs.send_message(QueueUrl=dlq, MessageBody='{"detail": "not an order"}', MessageAttributes=malformed)
    sqs.send_message(QueueUrl=dlq, MessageBody='{"detail": {}}')
    # When it is redriven, Then only the good one moves, and the malformed one stays in the dead-letter queue
    assert redrive(sqs, "OrderEventsDeadLetterQueue", "OrderEventsQueue") == 1
    queue = sqs.get_queue_url(QueueName="OrderEventsQueue")["QueueUrl"]
    (moved,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert moved["Body"] == '{"detail": {}}'
    left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert left["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_the_redrive_long_polls_so_no_sampled_empty_answer_ends_it(aws_env):
    # SQS's short poll asks a sample of its servers and may answer nothing while messages wait; a long poll
    # (WaitTimeSeconds > 0) asks them all. moto never samples, so what is checked is the request itself.
    sqs = boto3.client("sqs", region_name=REGION)
    asked: list[dict] = []
    sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", lambda params, **_: asked.append(params))
    dlq = sqs.get_queue_url(QueueName="CustomerEventsDeadLetterQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"detail": {}}))
    assert redrive(sqs, "CustomerEventsDeadLetterQueue", "CustomerEventsQueue") == 1
    assert asked and all(params.get("WaitTimeSeconds", 0) >= 1 for params in asked)
