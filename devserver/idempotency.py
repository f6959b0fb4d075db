"""DynamoDB's ClientRequestToken, which moto ignores: a TransactWriteItems sent again with the same token.

On AWS (TransactWriteItems, `ClientRequestToken`): multiple identical calls with the same token have the effect
of one; the token is valid for 10 minutes after the first request that uses it completed; the same token with
other parameters within those 10 minutes is refused with IdempotentParameterMismatch. botocore puts a fresh
token into every TransactWriteItems that lacks one (the member is an idempotency token) and its retries resend
the same bytes, so a transaction whose answer was lost and that botocore sends again succeeds on AWS instead of
failing its own conditions. moto applies it a second time; this wrapper around moto's request handler answers as
AWS does:

- a successful transaction's token is remembered (with a digest of the request) for `WINDOW_SECONDS`;
- the same token again, same request: the first answer, nothing applied again;
- the same token again, another request: 400 IdempotentParameterMismatchException, nothing applied.

A request that failed (a condition, a conflict) leaves no token behind: sent again, it is evaluated again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

WINDOW_SECONDS = 600.0
_TARGET = "DynamoDB_20120810.TransactWriteItems"

_lock = threading.RLock()
_remembered: dict[str, tuple[float, str, tuple[int, dict[str, str], Any]]] = {}
clock: Callable[[], float] = time.monotonic  # tests move it to step past the window


def reset() -> None:
    with _lock:
        _remembered.clear()


def _target(request: Any) -> str:
    target = request.headers.get("X-Amz-Target") or ""
    return target.decode() if isinstance(target, bytes) else str(target)


def _body(request: Any) -> bytes:
    body = request.body or b""
    if hasattr(body, "read"):  # a stream: read it, and leave it readable for moto
        position = body.tell()
        data = body.read()
        body.seek(position)
        return data
    return body.encode() if isinstance(body, str) else bytes(body)


def _mismatch() -> tuple[int, dict[str, str], str]:
    code = "IdempotentParameterMismatchException"
    body = json.dumps(
        {
            "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
            "message": "Request parameters do not match the original request for this client request token",
        }
    )
    return 400, {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}, body


def serve(request: Any, apply: Callable[[], Any]) -> Any:
    """moto's answer to `request` (by `apply`), or the remembered one for a repeated token."""
    if _target(request) != _TARGET:
        return apply()
    raw = _body(request)
    try:
        token = json.loads(raw or b"{}").get("ClientRequestToken")
    except ValueError:
        token = None
    if not token:
        return apply()
    digest = hashlib.sha256(raw).hexdigest()
    with _lock:
        now = clock()
        for key in [k for k, (expires, _, _) in _remembered.items() if expires <= now]:
            del _remembered[key]
        seen = _remembered.get(token)
        if seen is not None:
            _, first_digest, answer = seen
            return answer if first_digest == digest else _mismatch()
        answer = apply()
        if answer is not None and int(answer[0]) == 200:
            _remembered[token] = (clock() + WINDOW_SECONDS, digest, answer)
        return answer


def install() -> None:
    """Wrap moto's request handler (once), outermost, so a repeated token never reaches moto's tables."""
    from moto.core.botocore_stubber import BotocoreStubber

    if getattr(BotocoreStubber.process_request, "_idempotency_tokens", False):
        return
    original: Callable[..., Any] = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        from devserver.aws import ANSWERED_ELSEWHERE

        if request.headers.get(ANSWERED_ELSEWHERE):
            return original(self, request)
        return serve(request, lambda: original(self, request))

    for flag in ("_serialised", "_stale_reads"):  # the other wrappers look for theirs on the outermost one
        setattr(process_request, flag, getattr(original, flag, False))
    process_request._idempotency_tokens = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
