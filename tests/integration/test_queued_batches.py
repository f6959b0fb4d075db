"""A batch from an SQS queue inside the function's Timeout (layers/referrals/queued_events.py): a record is started
only while one record's worst case still fits, so an invocation never times out with records done and undone
alike (a timed-out invocation reports no batchItemFailures: all ten would come back, done ones too)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devserver.lambdas import LocalFunction
from devserver.stack import ACCOUNT, REGION
from referrals import clients
from tests.conftest import load_event
from tests.faults import SLOW

pytestmark = pytest.mark.usefixtures("aws_env")


def _records(sqs: Any, queue: str, bodies: list[str]) -> list[dict[str, Any]]:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
            "awsRegion": REGION,
        }
        for m in messages
    ]


def test_a_record_is_not_started_once_its_worst_case_no_longer_fits(aws_env, faults):
    function = LocalFunction(aws_env.functions()["MailEventsFunction"])
    sqs = boto3.client("sqs", region_name=REGION)
    bounce = load_event("ses-bounce.json")
    records = _records(sqs, "MailEventsQueue", [json.dumps(bounce), json.dumps(bounce)])
    assert len(records) == 2
    # Given the first record's write takes 5 of the function's 10 seconds (a slow answer, not a failure)
    faults.arm(1, SLOW, seconds=5.0)
    # When the batch runs
    answer = function.invoke({"Records": records})
    # Then the first is done, and the second is left for a later invocation rather than started with 5 s left
    assert faults.injected == 1
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[1]["messageId"]}]}


def test_sqs_refusing_the_backoff_is_an_error_and_counted(aws_env, faults, monkeypatch, capsys, caplog):
    function = LocalFunction(aws_env.functions()["MailEventsFunction"])
    sqs = boto3.client("sqs", region_name=REGION)
    records = _records(sqs, "MailEventsQueue", [json.dumps(load_event("ses-bounce.json"))])
    # Given a record whose write keeps failing, and SQS refusing to delay it (as under a policy that lacked
    # sqs:ChangeMessageVisibility)
    made = clients.client

    class RefusingDelays:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def change_message_visibility(self, **_: Any) -> None:
            error = {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}
            raise ClientError(error, "ChangeMessageVisibility")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    monkeypatch.setattr(
        clients, "client", lambda service: RefusingDelays(made(service)) if service == "sqs" else made(service)
    )
    faults.arm(1, "throttling")
    capsys.readouterr()
    answer = function.invoke({"Records": records})
    faults.disarm()
    # Then the record is answered failed (the queue's visibility timeout brings it back), and the refusal is not
    # shrugged off: logged as an error naming the operation, and counted
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    refusals = [r for r in caplog.records if r.levelname == "ERROR" and getattr(r, "operation", None)]
    assert [r.operation for r in refusals] == ["ChangeMessageVisibility"]
    assert any(line.get("ErrorRefused") == [1.0] for line in lines)


def test_a_failed_record_is_logged_with_what_failed_and_not_its_body(aws_env, faults, caplog):
    function = LocalFunction(aws_env.functions()["MailEventsFunction"])
    sqs = boto3.client("sqs", region_name=REGION)
    records = _records(sqs, "MailEventsQueue", [json.dumps(load_event("ses-bounce.json"))])
    # Given a record whose write DynamoDB keeps throttling
    faults.arm(1, "throttling")
    answer = function.invoke({"Records": records})
    faults.disarm()
    # Then it is answered failed, and one line says which record, what failed and how often: never its addresses
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    (line,) = [r for r in caplog.records if r.getMessage().startswith("record failed")]
    assert (line.messageId, line.errorType, line.receiveCount) == (records[0]["messageId"], "Busy", 1)
    assert "@" not in caplog.text
