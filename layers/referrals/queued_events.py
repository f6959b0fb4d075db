"""What the queue-fed functions (orders, mail events, privacy) share: EventBridge events arrive through an SQS
queue (the rule targets the queue; an SQS event source mapping invokes the function with a batch of up to 10).

Each record's body is the EventBridge envelope, handled on its own (Powertools' BatchProcessor): a record that
raises is reported in `batchItemFailures`, so only it returns to the queue, and it is first hidden for a backoff
that doubles with its ApproximateReceiveCount (1, 2, 4, 8 minutes, then 15 minutes each time). With the source
queue's maxReceiveCount of 100 that is 24 hours of tries before SQS moves it to the dead-letter queue
(`retry_horizon()`, docs/faults.md "Delivery"). A record the function cannot use (malformed) is dead-lettered by
the handler with its reason and counts as processed: a retry cannot mend it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from referrals import clients
from referrals.config import CLIENT_TIMEOUTS
from referrals.errors import Refused
from referrals.storage.client import RETRYABLE, classify, refusal

BACKOFF_BASE_S = 60
BACKOFF_CAP_S = 900  # 15 minutes
MAX_RECEIVE_COUNT = 100  # template.yaml, the source queues' RedrivePolicy


def backoff(receive_count: int) -> int:
    """Seconds a record that failed on its Nth receive stays hidden: 60 * 2^(N-1), at most 15 minutes."""
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (max(1, receive_count) - 1))


def retry_horizon(max_receive_count: int = MAX_RECEIVE_COUNT) -> int:
    """Seconds from a record's first receive to its last (the Nth): the backoffs after receives 1..N-1."""
    return sum(backoff(n) for n in range(1, max_receive_count))


def is_batch(event: Any) -> bool:
    return isinstance(event, dict) and isinstance(event.get("Records"), list)


def queue_url(arn: str) -> str:
    """arn:aws:sqs:<region>:<account>:<name> as the queue's URL."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def _hide_for_backoff(record: SQSRecord, logger: Logger, metrics: Metrics) -> None:
    count = int(record.attributes.approximate_receive_count or 1)
    try:
        clients.client("sqs").change_message_visibility(
            QueueUrl=queue_url(record.event_source_arn),
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=backoff(count),
        )
    except (BotoCoreError, ClientError) as error:
        # Either way the queue's own visibility timeout (15 minutes) applies instead. A refusal (the policy, a
        # queue that is gone) is our fault and would hold for every record: an error, counted, never a shrug.
        if classify(error) != RETRYABLE:
            refusal(error, "SQS", "ChangeMessageVisibility")
            metrics.add_metric(name="ErrorRefused", unit=MetricUnit.Count, value=1)
        else:
            logger.warning("could not delay the failed record", extra={"messageId": record.message_id})


class NotStarted(Exception):
    """A record left for a later invocation: too little of this one's time was left to start it."""


def _out_of_time(context: Any) -> bool:
    """Whether less time is left than one record may need at worst (one SDK call that hangs through its retries,
    and the give-back after it): referrals.config.CLIENT_TIMEOUTS."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is not None and remaining() < CLIENT_TIMEOUTS.worst_case_seconds * 1000


def handle_batch(
    event: dict[str, Any], context: Any, handle: Callable[[Any], Any], logger: Logger, metrics: Metrics
) -> dict[str, list[dict[str, str]]]:
    """`handle` each record's envelope; answer the failed ones' ids (ReportBatchItemFailures). A record AWS refused
    (errors.Refused, logged where it was refused) is counted as ErrorRefused."""

    def record_handler(record: SQSRecord) -> Any:
        if _out_of_time(context):
            # Started now, a record whose calls all hang would run the function past its Timeout, and a timed-out
            # invocation reports no batchItemFailures: every record, done or not, would come back after the queue's
            # 15 minutes. Left for the next invocation instead, after its own backoff.
            _hide_for_backoff(record, logger, metrics)
            raise NotStarted(record.message_id)
        try:
            envelope: Any = json.loads(record.body)
        except ValueError:
            envelope = record.body  # not JSON: the handler refuses it as malformed
        try:
            return handle(envelope)
        except Exception as error:
            if isinstance(error, Refused):
                metrics.add_metric(name="ErrorRefused", unit=MetricUnit.Count, value=1)
            # What failed and how often, never the record's body: a day of these precedes a dead letter.
            logger.warning(
                "record failed: it comes back after its backoff",
                extra={
                    "messageId": record.message_id,
                    "errorType": type(error).__name__,
                    "receiveCount": int(record.attributes.approximate_receive_count or 1),
                },
            )
            _hide_for_backoff(record, logger, metrics)
            raise

    # Even when every record failed, answer them as failures rather than fail the invocation: each keeps the
    # backoff it was given instead of the queue's visibility timeout.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
