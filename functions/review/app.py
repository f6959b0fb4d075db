"""Review of flagged referrals, for servers: Mutation.reviewReferral (IAM only; docs/rewards.md, "Review").

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
    return graphql_adapter.respond(lambda: _review(event), metrics, logger)


def _review(event: dict[str, Any]) -> dict[str, Any]:
    info = event.get("info") or {}
    if (info.get("parentTypeName"), info.get("fieldName")) != ("Mutation", "reviewReferral"):
        raise graphql_adapter.UnknownField()
    who = graphql_adapter.iam_caller(event.get("identity"))
    arguments = event.get("arguments") or {}
    outcome = review.review_referral(
        settings, arguments.get("refereeId"), arguments.get("decision"), who, datetime.now(UTC)
    )
    metrics.add_metric(name=_METRICS[outcome.decision], unit=MetricUnit.Count, value=1)
    # The audit line: who decided what, and where the referral stands (not whose: the item keeps reviewedBy).
    logger.info("review", extra={"caller": who, "decision": outcome.decision, "status": outcome.status})
    return graphql_adapter.shape(outcome)
