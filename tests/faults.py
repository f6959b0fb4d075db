"""Fault injection for drills: make the Nth AWS call of a flow fail, the way AWS fails.

Two botocore hooks, registered with the built-in handlers before moto's, so they see every client:
`before-call` numbers the logical calls of a flow; `before-send` answers a chosen call's HTTP attempts with
an error (or raises a timeout) instead of letting moto serve them. botocore's retry mode then does what it
does with the real error: a fault that lasts fewer attempts than AWS_MAX_ATTEMPTS is retried away.

`lost` (LOST, among the kinds the drills run at every write) is the answer lost after AWS applied the request:
the hook hands the request to moto (so it is applied), then raises botocore's ReadTimeoutError as if the answer
never came back. botocore's standard mode retries it with the same request, as it would on AWS: each write must
recognise its own earlier effect (docs/faults.md, "Lost answers").

`slow` (not among KINDS, which the drills run at every call) is not a failure: AWS serves the call, and it
takes `seconds` longer. Inside a local invocation that time counts against the function's Timeout
(devserver/lambdas.py `elapse`), so the next request past the deadline is never sent; outside one it sleeps.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError, SSLError

from devserver import lambdas
from devserver.aws import ANSWERED_ELSEWHERE

KINDS = ("throttling", "internal", "timeout", "conflict")
SLOW = "slow"
LOST = "lost"
# Failures of the connection rather than answers, for the drills where the difference matters (SES sends, which
# must not be repeated once they may have gone): `unreachable`, no connection made (nothing can have been applied);
# `tls` and `dropped`, a TLS error or the connection closed once connected (the request may have gone). And
# `denied`, AWS refusing the request (AccessDenied). None is among KINDS.
UNREACHABLE = "unreachable"
TLS = "tls"
DROPPED = "dropped"
DENIED = "denied"
# The writes a LOST answer is drilled at. SES's SendBulkTemplatedEmail takes no idempotency token: it is sent at most
# once, and a lost answer leaves its friends UNCONFIRMED (docs/invites.md, "When SES fails").
WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchWriteItem",
        "PutEvents",
        "SendMessage",
        "SendBulkTemplatedEmail",
    }
)


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@dataclass
class Plan:
    call: int  # 1-based index of the logical call to fail
    kind: str
    attempts: int  # how many HTTP attempts of that call fail (a large number: all of them)
    operation: str | None = None
    item: int = 0  # for a transaction conflict: which item of the transaction conflicted
    seconds: float = 0.0  # for a slow call: how much longer it takes


class FaultInjector:
    def __init__(self) -> None:
        self._state = threading.local()
        self.plans: list[Plan] = []
        self.injected = 0
        self.total_injected = 0

    def arm(
        self,
        call: int | list[int],
        kind: str,
        attempts: int = 1_000,
        operation: str | None = None,
        item: int = 0,
        seconds: float = 0.0,
    ) -> None:
        """Fail call N (or each of several calls) of what runs next, for that many HTTP attempts each; or, for
        `slow`, make each of those attempts take `seconds` longer."""
        assert kind in (*KINDS, SLOW, LOST, UNREACHABLE, TLS, DROPPED, DENIED)
        assert kind != SLOW or seconds > 0
        calls = [call] if isinstance(call, int) else call
        self.plans = [Plan(n, kind, attempts, operation, item, seconds) for n in calls]
        self._state.calls = 0
        self.injected = 0

    def disarm(self) -> None:
        self.plans = []

    def before_call(self, model: Any, **_: Any) -> None:
        self._state.calls = getattr(self._state, "calls", 0) + 1
        self._state.current = (getattr(self._state, "calls", 0), model)

    def before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if ANSWERED_ELSEWHERE in request.headers:  # botocore retries resend the same request object
            del request.headers[ANSWERED_ELSEWHERE]
        if not self.plans:
            return None
        index, model = getattr(self._state, "current", (0, None))
        for plan in self.plans:
            if plan.call != index or plan.attempts <= 0 or (plan.operation and plan.operation != model.name):
                continue
            plan.attempts -= 1
            self.injected += 1
            self.total_injected += 1
            if plan.kind == SLOW:  # served as usual, only later
                if not lambdas.elapse(plan.seconds):
                    time.sleep(plan.seconds)
                return None
            if plan.kind == "timeout":
                raise ReadTimeoutError(endpoint_url=request.url)
            if plan.kind == UNREACHABLE:
                raise EndpointConnectionError(endpoint_url=request.url)
            if plan.kind == TLS:
                raise SSLError(endpoint_url=request.url, error="bad record mac")
            if plan.kind == DROPPED:
                raise ConnectionClosedError(endpoint_url=request.url)
            if plan.kind == LOST:  # applied by AWS, and the answer never reaches us
                from moto.core.models import botocore_stubber

                botocore_stubber(event_name="before-send", request=request)
                raise ReadTimeoutError(endpoint_url=request.url)
            request.headers[ANSWERED_ELSEWHERE] = "fault drill"  # moto must not apply what we refused
            return _error_response(request.url, model, plan.kind, plan.item)
        return None

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.extend([("before-call", self.before_call), ("before-send", self.before_send)])


def _error_response(url: str, model: Any, kind: str, item: int = 0) -> AWSResponse:
    status, code, extra = {
        "throttling": (400, "ThrottlingException", {}),
        "internal": (500, "InternalServerError", {}),
        "conflict": (400, "TransactionCanceledException", {}),
        DENIED: (400, "AccessDenied", {}),
    }[kind]
    protocol = model.service_model.protocol
    if kind == "throttling" and protocol == "query":
        code = "Throttling"  # the query-protocol services (SES v1) name it so
    if kind == "conflict" and model.name == "TransactWriteItems":
        extra = {"CancellationReasons": [{"Code": "None"}] * item + [{"Code": "TransactionConflict"}]}
    elif kind == "conflict":
        status, code = 400, "TransactionConflictException"
    if protocol in {"json", "smithy-rpc-v2-cbor"} or protocol.startswith("json"):
        body = json.dumps({"__type": f"com.amazonaws#{code}", "message": f"injected {kind}", **extra}).encode()
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected {kind}</Message>"
            f"</Error><RequestId>fault</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    return AWSResponse(url, status, headers, _Raw(body))
