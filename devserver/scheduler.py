"""Schedules as the stand-in runs them: each `Schedule`/`ScheduleV2` event of template.yaml with a `rate(...)`
expression fires its function on the wall clock while `make dev` runs, with the event AWS would send (the
ScheduleV2's `Input` with `<aws.scheduler.scheduled-time>` filled in; a Schedule rule's envelope or Input).
To place a run at any other moment, `POST /_local/invoke/<logicalId>` with `{"time": ...}` (docs/rewards.md).
`REFERRALS_LOCAL_SCHEDULES=off` turns the clock off; `cron(...)` expressions are listed, not run.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from devserver.lambdas import FunctionError, LocalFunction
from devserver.stack import ACCOUNT, REGION, FunctionEvent

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def period(expression: str | None) -> timedelta | None:
    """The period of a `rate(...)` expression, or None for anything else."""
    match = _RATE.match((expression or "").strip())
    if not match:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).rstrip("s")])


def scheduled_event(function: LocalFunction, event: FunctionEvent, at: datetime) -> Any:
    """What AWS hands the function for a run scheduled at `at`."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if event.type == "ScheduleV2":
        if not event.input:
            return {}
        text = (
            event.input.replace("<aws.scheduler.scheduled-time>", stamp)
            .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
            .replace("<aws.scheduler.attempt-number>", "1")
            .replace("<aws.scheduler.schedule-arn>", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/local")
        )
        return json.loads(text)
    if event.input:
        return json.loads(event.input)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": stamp,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function.spec.logical_id}"],
        "detail": {},
    }


class Scheduler:
    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        self.jobs = [
            (function, event, every)
            for function in functions.values()
            for event in function.spec.events
            if event.type in {"Schedule", "ScheduleV2"} and (every := period(event.expression)) is not None
        ]
        self._stop = threading.Event()

    def start(self) -> None:
        for function, event, every in self.jobs:
            threading.Thread(target=self._run, args=(function, event, every), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, function: LocalFunction, event: FunctionEvent, every: timedelta) -> None:
        # As a new schedule on AWS: the first run comes one period after it is created.
        due = datetime.now(UTC) + every
        while not self._stop.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
            try:
                function.invoke(scheduled_event(function, event, due))
            except FunctionError as error:  # as on AWS: logged, and the next run comes anyway
                print(f"{function.spec.logical_id} failed: {error.error_type}", file=sys.stderr, flush=True)
            due += every
