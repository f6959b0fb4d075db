"""SQS event source mappings as Lambda runs them: for each function's `SQS` event in template.yaml, receive a
batch (up to BatchSize) from the queue, invoke the function synchronously with Lambda's SQS event, delete what
succeeded and leave the rest.

- The function answers `{"batchItemFailures": [{"itemIdentifier": <messageId>}]}` (ReportBatchItemFailures):
  those stay on the queue, the others are deleted. An invocation that fails (raises, times out) or answers
  an id not in the batch leaves the whole batch, as Lambda does.
- What stays becomes visible again when its visibility timeout ends: the one the function set
  (ChangeMessageVisibility, its backoff) or the queue's VisibilityTimeout. After maxReceiveCount receives SQS
  moves it to the queue's dead-letter queue. That is moto's SQS, on the stand-in's clock (devserver/clock.py):
  a drill advances the clock and calls `run_until_idle`; `make dev` polls once a second (`start`).
- Receiving and deleting are the mapping's (Lambda's service), not the function's role: not checked against it.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from dataclasses import dataclass
from typing import Any

from devserver.lambdas import FunctionError, LocalFunction
from devserver.stack import ACCOUNT, REGION


def queue_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def queue_url(name: str) -> str:
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


@dataclass
class Mapping:
    function: LocalFunction
    queue_arn: str
    batch_size: int
    report_failures: bool

    @property
    def queue(self) -> str:
        return queue_name(self.queue_arn)

    def record(self, message: dict[str, Any]) -> dict[str, Any]:
        """A message as Lambda hands it to the function (the `Records` of an SQS event)."""
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": None,
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType"),
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }

    def poll(self) -> int:
        """One receive and, if it got messages, one invocation; how many messages it handed over."""
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        url = queue_url(self.queue)
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        ids = {m["MessageId"] for m in messages}
        try:
            answer = self.function.invoke({"Records": [self.record(m) for m in messages]})
        except FunctionError as error:  # the whole batch stays; each returns after its visibility timeout
            print(f"{self.function.spec.logical_id} failed a batch: {error.error_type}", file=sys.stderr, flush=True)
            return len(messages)
        failed = self._failed(answer, ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:][:10])],
            )
        return len(messages)

    def _failed(self, answer: Any, ids: set[str]) -> set[str]:
        if not self.report_failures:
            return set()
        failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
        if not failures:
            return set()
        named = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
        # An id Lambda did not send (or none at all) fails the whole batch, as on AWS
        return named if named and named <= ids else set(ids)


class EventSourceMappings:
    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        self.mappings = [
            Mapping(function, event.queue, event.batch_size, event.report_failures)
            for function in functions.values()
            for event in function.spec.events
            if event.type == "SQS" and event.queue
        ]
        self._stop = threading.Event()
        self._polling = threading.Lock()

    def by_queue(self, name: str) -> Mapping | None:
        return next((m for m in self.mappings if m.queue == name), None)

    def run_until_idle(self, limit: int = 10_000) -> int:
        """Poll every mapping until none gets a message (what is visible now is handed over); the messages handed."""
        handed = 0
        with self._polling:
            for _ in range(limit):
                got = sum(mapping.poll() for mapping in self.mappings)
                if not got:
                    return handed
                handed += got
        raise RuntimeError("queues never went idle")

    def start(self, every: float = 1.0) -> None:
        """Poll in the background, in real time (`make dev`)."""

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.run_until_idle()
                except Exception as error:  # keep polling, as Lambda's pollers do
                    print(f"queue poller: {error!r}", file=sys.stderr, flush=True)

        threading.Thread(target=loop, daemon=True, name="sqs-event-source-mappings").start()

    def stop(self) -> None:
        self._stop.set()
