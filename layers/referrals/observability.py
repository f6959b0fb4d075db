"""Powertools for every function, set up once: Logger, Metrics and, when tracing is on, Tracer.

Powertools' Tracer imports the X-Ray SDK when it is built, even when tracing is disabled (about 20 ms of
every cold start, docs/performance.md). Lambda's own traces need no SDK, so subsegments are a deploy-time
choice (`TraceSubsegments`, which sets POWERTOOLS_TRACE_DISABLED): off, the functions get a tracer that
does nothing and imports nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from referrals.config import load_trace_subsegments


class TracerLike(Protocol):
    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]: ...

    def capture_method(self, method: Callable[..., Any]) -> Callable[..., Any]: ...

    def put_annotation(self, key: str, value: Any) -> None: ...


class NoTracer:
    """Tracer's interface, doing nothing: what a function gets while subsegments are off."""

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return handler

    def capture_method(self, method: Callable[..., Any]) -> Callable[..., Any]:
        return method

    def put_annotation(self, key: str, value: Any) -> None:
        return None


def tracer() -> TracerLike:
    if not load_trace_subsegments():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer()


def count_for_site(name: str, site: str | None, value: float = 1) -> None:
    """A programme figure for one site: its own EMF record with the dimensions `service` and `site`, beside the
    service-wide figure the function adds to its Metrics (which alarms watch). The dashboard draws a line per site
    (template.yaml `Dashboard`, docs/operations.md)."""
    if not site or value <= 0:
        return
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        metric.add_dimension("site", site)
