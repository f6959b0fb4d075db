"""Order events (EventBridge, source commerce.orders) into the referral lifecycle: parse, apply, count.

They arrive through OrderEventsQueue (the rule targets the queue), in SQS batches; each record's body is the
EventBridge envelope (layers/referrals/queued_events.py). A malformed event is logged (without its content),
counted and put on the dead-letter queue, and its record succeeds: retrying cannot mend it, and it must never
hold up the good events. A failure that a retry may mend (the store kept refusing) fails that record only: it
returns to the queue after a backoff, for at least a day, and only then goes to the dead-letter queue.
An envelope given directly (`sam local invoke -e events/order-placed.json`, the tests) is handled as one record.
"""

from __future__ import annotations

from typing import Any

import dead_letters
import observability
import queued_events
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from referrals import storage
from referrals.config import load_event_settings, load_settings
from referrals.order_events import parse_order_event
from referrals.rewards import orchestration

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
channels = load_event_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start


def _problems(error: ValidationError) -> list[str]:
    """Where and why the event was refused: field paths and error types, never the values."""
    return [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['type']}" for problem in error.errors()]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if queued_events.is_batch(event):
        return queued_events.handle_batch(event, context, _handle, logger, metrics)
    return _handle(event)


def _handle(event: Any) -> dict[str, Any]:
    envelope = event if isinstance(event, dict) else {}
    # Only what identifies the event, bounded: the rest may be anything and is not ours to log.
    logger.append_keys(eventId=str(envelope.get("id"))[:64], detailType=str(envelope.get("detail-type"))[:64])
    try:
        fact = parse_order_event(event)
    except ValidationError as error:
        problems = _problems(error)
        logger.warning("malformed order event: dead-lettered", extra={"problems": problems})
        metrics.add_metric(name="OrderEventsMalformed", unit=MetricUnit.Count, value=1)
        dead_letters.send_malformed(channels.order_events_dlq_url, event, problems, "order events")
        return {"outcome": "MALFORMED", "problems": problems}

    applied = orchestration.apply_order_event(settings, fact)
    metrics.add_metric(name=f"OrderEvents{applied.outcome.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    for detail_type in applied.announced:
        metrics.add_metric(name=detail_type, unit=MetricUnit.Count, value=1)
        observability.count_for_site(detail_type, applied.site)
    if applied.first_qualified:
        observability.count_for_site("FirstQualifyingOrders", applied.site)
    if applied.unpublished:
        metrics.add_metric(name="EventsUnpublished", unit=MetricUnit.Count, value=applied.unpublished)
        logger.warning("events left in the outbox for the reconciliation", extra={"count": applied.unpublished})
    logger.info(
        "order event", extra={"kind": fact.kind.value, "outcome": applied.outcome.value, "status": applied.status}
    )
    return {
        "outcome": applied.outcome.value,
        "status": applied.status,
        "announced": list(applied.announced),
        "published": applied.published,
    }
