"""What the queue-fed functions that parse their events (orders, privacy, mail events) share: an event they cannot
use, onto their dead-letter queue with the reason, so that it never holds up the good ones and can be looked at
later.

Only field paths and error types go in the message's attributes; the event itself is the body, unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from referrals import clients


def send_malformed(queue_url: str | None, event: Any, problems: list[str], what: str) -> None:
    """Put `event` on `queue_url` as MALFORMED with its `problems`; `what` names the events in the error raised
    when no queue is configured (the record then fails, and returns to its queue after a backoff until SQS moves it
    to the dead-letter queue: layers/referrals/queued_events.py)."""
    if not queue_url:
        raise RuntimeError(f"no dead-letter queue configured for malformed {what}")
    clients.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(event, default=str),
        MessageAttributes={
            "Reason": {"DataType": "String", "StringValue": "MALFORMED"},
            "Problems": {"DataType": "String", "StringValue": "; ".join(problems)[:1000] or "-"},
        },
    )
