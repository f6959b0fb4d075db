"""The scheduled reconciliation: earn rewards whose window closed, expire stale referrals, republish the outbox.

Its "now" is the event's `time`: the ScheduleV2 passes `<aws.scheduler.scheduled-time>` there (the same across
retries of one run), and a Schedule rule's envelope has it too. So a run can be placed at any moment.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import formats, storage
from referrals.config import load_settings
from referrals.rewards import orchestration

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start
# Stop taking new pages with this much time left; what is left stays due for the next run.
RESERVE_MS = 30_000


def run_time(event: Any) -> datetime:
    """The run's "now": the event's `time` (ISO 8601), or the clock when invoked by hand without one."""
    text = event.get("time") if isinstance(event, dict) else None
    if not text:
        logger.warning("no time in the event: using the clock")
        return datetime.now(UTC)
    if not isinstance(text, str):
        raise ValueError("time must be an ISO 8601 string")
    try:
        return formats.parse_time(text)
    except ValueError as error:
        raise ValueError("time must be an ISO 8601 string") from error


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    now = run_time(event)
    report = orchestration.reconcile(
        settings, now, keep_going=lambda: context.get_remaining_time_in_millis() > RESERVE_MS
    )
    for name, value in (
        ("RewardsEarned", report.earned),
        ("RewardsCapped", report.capped),
        ("RewardsHeld", report.held),
        ("ReferralsExpired", report.expired),
        ("EventsRepublished", report.republished),
        ("EventsUnpublished", report.unpublished),
        ("DueItemsContended", report.contended),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for site, earned in report.earned_by_site.items():
        observability.count_for_site("ReferralRewardEarned", site, earned)
    logger.info("reconciled", extra={"now": formats.iso(now), **asdict(report)})
    return {"time": formats.iso(now), **asdict(report)}
