"""Privacy for servers: erasure and export through GraphQL (IAM only), and erasure on `CustomerDeleted`.

Two kinds of event reach this function: AppSync's resolver context (Mutation.eraseCustomer, Query.exportCustomer,
both `@aws_iam`) and EventBridge's envelope (source `commerce.customers`, detail-type `CustomerDeleted`). It is
a function of its own so that the customer-facing API function never holds the right to delete an account.
The events arrive through CustomerEventsQueue in SQS batches, each record's body the envelope; a record that
fails returns to the queue after a backoff (layers/referrals/queued_events.py), the others are done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dead_letters
import graphql_adapter
import observability
import queued_events
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import formats, privacy, storage
from referrals.config import load_event_settings, load_settings
from referrals.errors import InvalidInput

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
channels = load_event_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start
EVENT_SOURCE = "commerce.customers"


def _erase(arguments: dict[str, Any], caller: str) -> Any:
    erasure = privacy.erase(arguments.get("customerId"), datetime.now(UTC))
    _count_erasure(erasure, via="api", caller=caller)
    return graphql_adapter.shape(erasure)


def _export(arguments: dict[str, Any], caller: str) -> Any:
    found = privacy.export(settings, arguments.get("customerId"), datetime.now(UTC), arguments.get("nextToken"))
    metrics.add_metric(name="CustomerExports", unit=MetricUnit.Count, value=1)
    logger.info("export", extra={"customerRef": privacy.reference(found.customer_id), "caller": caller})
    return graphql_adapter.shape(found)


_FIELDS: dict[tuple[str, str], Callable[[dict[str, Any], str], Any]] = {
    ("Mutation", "eraseCustomer"): _erase,
    ("Query", "exportCustomer"): _export,
}


def _count_erasure(erasure: privacy.Erasure, via: str, caller: str | None = None) -> None:
    metrics.add_metric(
        name="CustomersErased" if erasure.erased else "ErasuresNothingLeft", unit=MetricUnit.Count, value=1
    )
    # The audit line: who asked, which customer (as a digest), what went. Never the id itself.
    logger.info(
        "erasure",
        extra={
            "customerRef": privacy.reference(erasure.customer_id),
            "erased": erasure.erased,
            "via": via,
            "caller": caller,
        },
    )


def _graphql(event: dict[str, Any]) -> dict[str, Any]:
    return graphql_adapter.respond(lambda: _resolve(event), metrics, logger)


def _resolve(event: dict[str, Any]) -> Any:
    info = event.get("info") or {}
    route = _FIELDS.get((info.get("parentTypeName"), info.get("fieldName")))
    if route is None:
        raise graphql_adapter.UnknownField()
    return route(event.get("arguments") or {}, graphql_adapter.iam_caller(event.get("identity")))


def _event_time(envelope: dict[str, Any]) -> datetime:
    """ "Now" for an event is its `time` (a replay erases as of the same moment), else the clock."""
    text = envelope.get("time")
    try:
        return formats.parse_time(text) if isinstance(text, str) else datetime.now(UTC)
    except ValueError:
        return datetime.now(UTC)


def _queued(envelope: Any) -> dict[str, Any]:
    return _customer_deleted(envelope if isinstance(envelope, dict) else {"detail": envelope})


def _customer_deleted(envelope: dict[str, Any]) -> dict[str, Any]:
    # Only what identifies the event, bounded: the rest may be anything and is not ours to log.
    logger.append_keys(eventId=str(envelope.get("id"))[:64], detailType=str(envelope.get("detail-type"))[:64])
    detail = envelope.get("detail")
    try:
        if envelope.get("source") != EVENT_SOURCE or envelope.get("detail-type") != "CustomerDeleted":
            raise InvalidInput("detail-type", "UNEXPECTED_EVENT", "not a CustomerDeleted event")
        if not isinstance(detail, dict):
            raise InvalidInput("detail", "REQUIRED", "detail must be an object")
        customer_id = privacy.check_customer_id(detail.get("customerId"))
    except InvalidInput as error:
        # A retry cannot mend it: dead-letter it (field and reason only in the log) and succeed.
        problem = f"{error.info.get('field')}: {error.info.get('reason')}"
        logger.warning("malformed customer event: dead-lettered", extra={"problem": problem})
        metrics.add_metric(name="CustomerEventsMalformed", unit=MetricUnit.Count, value=1)
        dead_letters.send_malformed(channels.customer_events_dlq_url, envelope, [problem], "customer events")
        return {"outcome": "MALFORMED", "problem": problem}
    # The store refusing after retries raises (Busy): the record returns to the queue after a backoff.
    erasure = privacy.erase(customer_id, _event_time(envelope))
    _count_erasure(erasure, via="event")
    return {"outcome": "ERASED" if erasure.erased else "NOTHING_LEFT", "erased": erasure.erased}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if queued_events.is_batch(event):
        return queued_events.handle_batch(event, context, _queued, logger, metrics)
    if isinstance(event, dict) and "detail-type" in event:
        return _customer_deleted(event)
    return _graphql(event if isinstance(event, dict) else {})
