"""AWS requests and cost per operation.

Each operation runs through its function's handler on moto, in-process. A botocore event hook records every
AWS request with its parameters and answer, from which the billed units follow (DynamoDB request units,
emails, events). With the measured handler duration and the configured memory, that gives the cost per
million operations at on-demand list prices. The baseline for requests is the design minimum; for cost it is
what AppSync itself charges per request.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# On-demand list prices, us-east-1, as published by AWS for 2025 (docs/performance.md gives the date read).
PRICES_READ_ON = "2025-11"
APPSYNC_PER_REQUEST = Decimal("4.00") / 1_000_000
HTTP_API_PER_REQUEST = Decimal("1.00") / 1_000_000  # API Gateway HTTP API, first 300 million a month
LAMBDA_PER_REQUEST = Decimal("0.20") / 1_000_000
LAMBDA_ARM_PER_GB_SECOND = Decimal("0.0000133334")
DYNAMODB_PER_WRU = Decimal("0.625") / 1_000_000
DYNAMODB_PER_RRU = Decimal("0.125") / 1_000_000
SES_PER_EMAIL = Decimal("0.10") / 1_000
EVENTBRIDGE_PER_EVENT = Decimal("1.00") / 1_000_000
SCHEDULER_PER_INVOCATION = Decimal("1.00") / 1_000_000


@dataclass
class Recorded:
    service: str
    operation: str
    params: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """botocore hooks: `before-parameter-build` keeps the request's parameters, `after-call` its parsed answer."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []

    def before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(Recorded(model.service_model.service_name, model.name, dict(params)))

    def after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if self.calls and self.calls[-1].operation == model.name:
            self.calls[-1].answer = parsed or {}

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.extend([("before-parameter-build", self.before), ("after-call", self.after)])


class CallTimer:
    """Time spent inside AWS calls (`before-call` to `after-call`)."""

    def __init__(self) -> None:
        self.inside = 0.0
        self._started = 0.0

    def before(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def after(self, **_: Any) -> None:
        self.inside += time.perf_counter() - self._started

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.extend([("before-call", self.before), ("after-call", self.after)])


# One of each per process, installed before any client exists: clients keep the handlers they were made with.
RECORDER = Recorder()
TIMER = CallTimer()
_installed = False


def hooks() -> tuple[Recorder, CallTimer]:
    global _installed
    if not _installed:
        RECORDER.install()
        TIMER.install()
        _installed = True
    return RECORDER, TIMER


def _units(call: Recorded) -> dict[str, float]:
    """Billed units of one request. Items here are small: a write is under 1 KB, a read under 4 KB."""
    p, op = call.params, call.operation
    if call.service == "dynamodb":
        if op == "GetItem":
            return {"rru": 1.0 if p.get("ConsistentRead") else 0.5}
        if op == "BatchGetItem":
            keys = sum(len(t["Keys"]) for t in p["RequestItems"].values())
            return {"rru": 0.5 * keys}
        if op in {"Query", "Scan"}:
            size_kb = sum(len(str(item)) for item in call.answer.get("Items", [])) / 1024
            return {"rru": max(0.5, 0.5 * math.ceil(size_kb / 4))}
        if op in {"PutItem", "UpdateItem", "DeleteItem"}:
            return {"wru": 1.0}
        if op == "BatchWriteItem":
            return {"wru": float(sum(len(v) for v in p["RequestItems"].values()))}
        if op == "TransactWriteItems":
            return {"wru": 2.0 * len(p["TransactItems"])}
        if op == "TransactGetItems":
            return {"rru": 2.0 * len(p["TransactItems"])}
    if call.service == "ses":
        if op == "SendBulkTemplatedEmail":
            return {"emails": float(len(p["Destinations"]))}
        if op in {"SendTemplatedEmail", "SendEmail", "SendRawEmail"}:
            return {"emails": 1.0}
    if call.service == "events" and op == "PutEvents":
        return {"events": float(len(p["Entries"]))}
    return {}


@dataclass
class Operation:
    name: str
    function: str
    design_minimum: int
    prepare: Callable[[], Any]
    run: Callable[[Any], Any]
    via_appsync: bool = True
    per: int = 1  # the operation's unit: one request, or one due item of a reconciliation run
    via_http: bool = False  # through the HTTP API door: API Gateway's request price, not AppSync's


def _gb_seconds(memory_mb: int, billed_ms: int) -> Decimal:
    return LAMBDA_ARM_PER_GB_SECOND * Decimal(memory_mb) / 1024 * Decimal(billed_ms) / 1000


def measure(operations: list[Operation], memory_mb: dict[str, int], recorder: Recorder, rounds: int = 5) -> list[dict]:
    rows = []
    for op in operations:
        durations, requests, units = [], 0, {"rru": 0.0, "wru": 0.0, "emails": 0.0, "events": 0.0}
        detail: dict[str, int] = {}
        for _ in range(rounds):
            state = op.prepare()
            recorder.calls.clear()
            started = time.perf_counter()
            op.run(state)
            durations.append(time.perf_counter() - started)
            requests = len(recorder.calls)
            units = {k: 0.0 for k in units}
            detail = {}
            for call in recorder.calls:
                for k, v in _units(call).items():
                    units[k] += v
                detail[call.operation] = detail.get(call.operation, 0) + 1
        duration = statistics.median(durations)
        billed_ms = math.ceil(duration * 1000)
        lambda_cost = LAMBDA_PER_REQUEST + _gb_seconds(memory_mb[op.function], billed_ms)
        dynamodb_cost = DYNAMODB_PER_RRU * Decimal(str(units["rru"])) + DYNAMODB_PER_WRU * Decimal(str(units["wru"]))
        ses_cost = SES_PER_EMAIL * Decimal(str(units["emails"]))
        events_cost = EVENTBRIDGE_PER_EVENT * Decimal(str(units["events"]))
        entry_cost = APPSYNC_PER_REQUEST if op.via_appsync else SCHEDULER_PER_INVOCATION
        if op.via_http:
            entry_cost = HTTP_API_PER_REQUEST
        per = Decimal(op.per)
        rows.append(
            {
                "operation": op.name,
                "requests": requests / op.per,
                "design_minimum": op.design_minimum,
                "detail": detail,
                "duration_ms": round(duration * 1000, 2),
                "rru": units["rru"] / op.per,
                "wru": units["wru"] / op.per,
                "cost_per_million": {
                    "entry (AppSync, HTTP API or trigger)": float(entry_cost * 1_000_000 / per),
                    "lambda": float(lambda_cost * 1_000_000 / per),
                    "dynamodb": float(dynamodb_cost * 1_000_000 / per),
                    "ses": float(ses_cost * 1_000_000 / per),
                    "eventbridge": float(events_cost * 1_000_000 / per),
                },
            }
        )
    return rows
