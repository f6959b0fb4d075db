"""SES bounce and complaint events (EventBridge, source aws.ses) onto the site's suppression list."""

from __future__ import annotations

from typing import Any

import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import invites, storage
from referrals.config import load_settings

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    suppressed = invites.suppress_from_mail_event(settings, event.detail, event.time)
    metrics.add_metric(name="AddressesSuppressed", unit=MetricUnit.Count, value=suppressed)
    # No addresses in the log: the event id and type say enough to find the event again.
    logger.info(
        "mail event", extra={"eventId": event.get_id, "detailType": event.detail_type, "suppressed": suppressed}
    )
    return {"suppressed": suppressed}
