"""SES bounce and complaint events (EventBridge, source aws.ses) onto the site's suppression list.

They arrive through MailEventsQueue in SQS batches, each record's body the EventBridge envelope; a record that
fails returns to the queue after a backoff (layers/referrals/queued_events.py), the others are done.
"""

from __future__ import annotations

from typing import Any

import dead_letters
import observability
import queued_events
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import invites, storage
from referrals.config import load_event_settings, load_settings

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
channels = load_event_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if queued_events.is_batch(event):
        return queued_events.handle_batch(event, context, _handle, logger, metrics)
    return _handle(event)


def _problems(envelope: Any) -> list[str]:
    """Why an envelope is no SES mail event we can read (field paths, never values): none when it is one."""
    if not isinstance(envelope, dict):
        return ["envelope: not an object"]
    problems = [] if isinstance(envelope.get("detail"), dict) else ["detail: not an object"]
    return problems + ([] if isinstance(envelope.get("time"), str) else ["time: not a string"])


def _handle(envelope: Any) -> dict[str, Any]:
    problems = _problems(envelope)
    if problems:  # no retry can mend it: dead-lettered at once, with the reason, and the record is done
        logger.warning("malformed mail event: dead-lettered", extra={"problems": problems})
        metrics.add_metric(name="MailEventsMalformed", unit=MetricUnit.Count, value=1)
        dead_letters.send_malformed(channels.mail_events_dlq_url, envelope, problems, "mail events")
        return {"outcome": "MALFORMED", "problems": problems}
    event = EventBridgeEvent(envelope)
    suppressed = invites.suppress_from_mail_event(settings, event.detail, event.time)
    metrics.add_metric(name="AddressesSuppressed", unit=MetricUnit.Count, value=suppressed)
    # No addresses in the log: the event id and type say enough to find the event again.
    logger.info(
        "mail event", extra={"eventId": event.get_id, "detailType": event.detail_type, "suppressed": suppressed}
    )
    return {"suppressed": suppressed}
