"""Move dead letters back to their source queue, so the function takes them again (docs/faults.md, "Delivery").

    python -m devserver.redrive OrderEventsDeadLetterQueue OrderEventsQueue            # receive, send, delete
    python -m devserver.redrive <dlq-url-or-arn> <queue-arn> --move-task               # AWS: StartMessageMoveTask

Against AWS give the queues' URLs or ARNs (the stack's outputs) and AWS credentials; `--move-task` has SQS move
them itself (StartMessageMoveTask, which moto lacks). Without it each message is received, sent to the source
queue (body and attributes unchanged) and only then deleted: at worst a message is sent twice, and the
functions are idempotent. A malformed event (`Reason` MALFORMED) is left where it is, and one run moves at most
what the queue held when it began.
"""

from __future__ import annotations

import argparse
from typing import Any

MALFORMED = "MALFORMED"  # the Reason attribute layers/referrals/dead_letters.py gives an event no retry can mend


def _url(sqs: Any, queue: str) -> str:
    if queue.startswith("https://"):
        return queue
    return sqs.get_queue_url(QueueName=queue.rsplit(":", 1)[-1])["QueueUrl"]


def _arn(sqs: Any, queue: str) -> str:
    if queue.startswith("arn:"):
        return queue
    return sqs.get_queue_attributes(QueueUrl=_url(sqs, queue), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def redrive(sqs: Any, dead_letters: str, source: str, move_task: bool = False) -> int | str:
    """Moved messages' count (or, with move_task, the task's handle)."""
    if move_task:
        return sqs.start_message_move_task(SourceArn=_arn(sqs, dead_letters), DestinationArn=_arn(sqs, source))[
            "TaskHandle"
        ]
    from_url, to_url = _url(sqs, dead_letters), _url(sqs, source)
    # At most what was there when we started: an event that fails again (or a malformed one the function
    # dead-letters at once) must not be picked up again by this same run.
    waiting = int(
        sqs.get_queue_attributes(QueueUrl=from_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    moved = seen = 0
    while seen < waiting and (
        # Long polling (WaitTimeSeconds > 0) asks every SQS server; a short poll samples some of them and may
        # answer nothing while messages wait, which would end the run early.
        messages := sqs.receive_message(
            QueueUrl=from_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
            WaitTimeSeconds=1,
        ).get("Messages", [])
    ):
        for message in messages:
            seen += 1
            reason = (message.get("MessageAttributes") or {}).get("Reason", {}).get("StringValue")
            if reason == MALFORMED:
                continue  # no retry can mend it: it stays for a person to read (visible again in 60 s)
            attributes = {
                k: {key: v[key] for key in ("DataType", "StringValue", "BinaryValue") if key in v}
                for k, v in (message.get("MessageAttributes") or {}).items()
            }
            sqs.send_message(QueueUrl=to_url, MessageBody=message["Body"], MessageAttributes=attributes)
            sqs.delete_message(QueueUrl=from_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def main(argv: list[str] | None = None) -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dead_letters", help="the dead-letter queue: name, URL or ARN")
    parser.add_argument("source", help="the queue to move them to: name, URL or ARN")
    parser.add_argument("--move-task", action="store_true", help="SQS's StartMessageMoveTask (AWS only)")
    args = parser.parse_args(argv)
    print(redrive(boto3.client("sqs"), args.dead_letters, args.source, args.move_task))


if __name__ == "__main__":
    main()
