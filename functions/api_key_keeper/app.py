"""Keeps the public API key (the landing page's, Query.referralOffer) from lapsing: once a day it moves the key's
expiry to a year ahead, so the key the landing pages carry works for as long as the stack runs, with no person
and no rotation (docs/operations.md, "The public API key").

AppSync takes an expiry between 1 and 365 days ahead, rounded down to the hour; a key whose expiry has passed is
deleted by AppSync within 60 days and cannot be extended, so the daily run leaves a year of margin for a keeper
that stops (its errors alarm).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import clients, storage
from referrals.config import load_public_key_settings

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
storage.settings()  # the region (and the tables): a function deployed without them stops here, at cold start
key = load_public_key_settings()  # likewise the API's and the key's ids
# AppSync's ceiling is 365 days ahead; a day less leaves room for the hour's rounding and the clocks.
AHEAD = timedelta(days=364)


def new_expiry(now: datetime) -> int:
    """A year ahead of `now`, on the hour (Unix seconds), as AppSync keeps it."""
    return int((now + AHEAD).replace(minute=0, second=0, microsecond=0).timestamp())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    expires = new_expiry(datetime.now(UTC))
    clients.client("appsync").update_api_key(apiId=key.api_id, id=key.key_id, expires=expires)
    metrics.add_metric(name="ApiKeyExtended", unit=MetricUnit.Count, value=1)
    logger.info("public API key extended", extra={"expires": expires})
    return {"expires": expires}
