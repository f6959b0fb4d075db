"""Review of flagged referrals, for servers: Mutation.reviewReferral (IAM only; docs/rewards.md, "Review").

A function of its own, so that the customer-facing API function never holds the right to pay a held reward.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import rewards
from referrals.config import load_settings
from referrals.errors import ReferralError

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()


class NotAServer(ReferralError):
    code = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("This operation is for servers signing with IAM")


class UnknownField(ReferralError):
    code = "UnknownField"

    def __init__(self) -> None:
        super().__init__("This function does not resolve that field")


def reviewer(identity: Any) -> str:
    """The IAM role behind the request (the session name may be a person's name or address, so it is cut off).

    AppSync lets only IAM-signed requests reach this `@aws_iam` field; this refuses anything else again, and IAM
    credentials from a Cognito identity pool (a shopper's browser may hold those) too.
    """
    if not isinstance(identity, dict) or not identity.get("userArn") or not identity.get("accountId"):
        raise NotAServer()
    if identity.get("cognitoIdentityPoolId") or identity.get("cognitoIdentityId") or identity.get("sub"):
        raise NotAServer()
    arn = str(identity["userArn"])
    if ":assumed-role/" in arn:
        arn = arn.rsplit("/", 1)[0]
    return arn[:256]


_METRICS = {"RELEASE": "ReferralsReleased", "REJECT": "ReferralsRejected"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def graphql_error(error: ReferralError) -> dict[str, Any]:
    """What the client sees of a domain error (resolvers/invoke.js raises it with util.error)."""
    return {"error": {"type": error.code, "message": error.message, "info": error.info or None}}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.APPSYNC_RESOLVER)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    info = event.get("info") or {}
    try:
        if (info.get("parentTypeName"), info.get("fieldName")) != ("Mutation", "reviewReferral"):
            raise UnknownField()
        who = reviewer(event.get("identity"))
        arguments = event.get("arguments") or {}
        outcome = rewards.review_referral(
            settings, arguments.get("refereeId"), arguments.get("decision"), who, datetime.now(UTC)
        )
    except ReferralError as error:
        metrics.add_metric(name=f"Error{error.code}", unit=MetricUnit.Count, value=1)
        logger.info("refused", extra={"errorType": error.code})
        return graphql_error(error)
    except Exception:
        logger.exception("unexpected failure")
        metrics.add_metric(name="ErrorInternal", unit=MetricUnit.Count, value=1)
        return {"error": {"type": "InternalFailure", "message": "An internal error occurred", "info": None}}
    metrics.add_metric(name=_METRICS[outcome.decision], unit=MetricUnit.Count, value=1)
    # The audit line: who decided what, and where the referral stands (not whose: the item keeps reviewedBy).
    logger.info("review", extra={"caller": who, "decision": outcome.decision, "status": outcome.status})
    return {"data": {_camel(k): v for k, v in asdict(outcome).items()}}
