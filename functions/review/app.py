"""The operators' fields, for servers signing with IAM: Mutation.reviewReferral (docs/rewards.md, "Review") and
Query.programmeStats (docs/programme.md).

A function of its own, so that the customer-facing API function never holds the right to pay a held reward.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import graphql_adapter
import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import storage
from referrals.config import load_settings
from referrals.rewards import review

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start


_METRICS = {"RELEASE": "ReferralsReleased", "REJECT": "ReferralsRejected"}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.APPSYNC_RESOLVER, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    return graphql_adapter.respond(lambda: _route(event), metrics, logger)


def _route(event: dict[str, Any]) -> dict[str, Any]:
    info = event.get("info") or {}
    field = (info.get("parentTypeName"), info.get("fieldName"))
    if field == ("Mutation", "reviewReferral"):
        return _review(event)
    if field == ("Query", "programmeStats"):
        return _programme_stats(event)
    raise graphql_adapter.UnknownField()


def _programme_stats(event: dict[str, Any]) -> dict[str, Any]:
    from referrals import programme  # only this field needs it

    who = graphql_adapter.iam_caller(event.get("identity"))
    arguments = event.get("arguments") or {}
    figures = programme.stats(settings, arguments.get("siteKey"), arguments.get("from"), arguments.get("to"))
    logger.info("programmeStats", extra={"caller": who, "site": figures.site_key, "days": len(figures.days)})
    return graphql_adapter.shape(figures)


def _review(event: dict[str, Any]) -> dict[str, Any]:
    who = graphql_adapter.iam_caller(event.get("identity"))
    arguments = event.get("arguments") or {}
    outcome = review.review_referral(
        settings, arguments.get("refereeId"), arguments.get("decision"), who, datetime.now(UTC)
    )
    metrics.add_metric(name=_METRICS[outcome.decision], unit=MetricUnit.Count, value=1)
    # The audit line: who decided what, and where the referral stands (not whose: the item keeps reviewedBy).
    logger.info("review", extra={"caller": who, "decision": outcome.decision, "status": outcome.status})
    return graphql_adapter.shape(outcome)
