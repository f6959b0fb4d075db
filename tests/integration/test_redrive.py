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
