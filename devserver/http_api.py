"""The HTTP API door as API Gateway's HTTP API serves it, under /http (docs/local.md, ../shared/CONTRACT.md).

The routes are template.yaml's HttpApi events (devserver/stack.py `http_routes`). Each request is checked as the
route's authorizer checks it, before the function runs: a JWT route takes the local tokens (devserver/tokens.py,
the same checks: signature, issuer, audience, expiry) and refuses anything else with 401 `{"message":
"Unauthorized"}`; an AWS_IAM route takes the local IAM header (devserver/iam.py) in place of a SigV4 signature and
refuses a missing or wrong one with 403 `{"message": "Forbidden"}`, as API Gateway's IAM authorization does. Then
the payload-format-2.0 event is built (lower-case headers, the body as a string or base64, the authorizer's
context, `requestContext.http.sourceIp` the connection's address) and the route's function is invoked like every
other local function (devserver/lambdas.py: its Timeout, its role, one invocation at a time).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from devserver import iam, tokens
from devserver.lambdas import FunctionError, time_in_functions
from devserver.stack import ACCOUNT

if TYPE_CHECKING:
    from devserver.server import Handler

# API Gateway HTTP API's payload limit; the function refuses what is over AppSync's 1 MB (graphql_engine).
MAX_BODY_BYTES = 10 * 1024 * 1024
API_ID = "local"
# Content types API Gateway passes as text; any other body reaches the function base64-encoded (isBase64Encoded).
_TEXT_TYPES = ("text/", "application/json", "application/graphql", "application/xml", "application/javascript")


def _message(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"message": message}).encode()


def serve(handler: Handler, path: str) -> tuple[int, bytes]:
    """Answer one request to the door: (HTTP status, body), as API Gateway would."""
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY_BYTES:
        handler._discard(length, MAX_BODY_BYTES)
        return _message(413, "Request Entity Too Large")
    raw = handler.rfile.read(length) if length else b""
    route = handler.local.http_routes.get((handler.command, path)) or handler.local.http_routes.get(("ANY", path))
    if route is None:
        return _message(404, "Not Found")
    function_name, event_source = route
    peer = handler.client_address[0]
    authorizer: dict[str, Any] | None = None
    if event_source.authorizer == "JWT":
        try:
            claims = tokens.verify(handler.headers.get("Authorization"), handler.local.app_client)
        except tokens.InvalidToken:
            return _message(401, "Unauthorized")
        # API Gateway hands the function every claim as a string (numbers, booleans and lists included)
        authorizer = {"jwt": {"claims": {k: _as_string(v) for k, v in claims.items()}, "scopes": None}}
    elif event_source.authorizer == "AWS_IAM":
        try:
            signed = iam.identity(handler.headers.get(iam.HEADER), peer)
        except iam.InvalidSignature:
            signed = None
        if signed is None:
            return _message(403, "Forbidden")
        authorizer = {
            "iam": {
                "accessKey": "ASIALOCALIAMCALLER",
                "accountId": signed["accountId"],
                "callerId": signed["username"],
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": signed["userArn"],
                "userId": signed["username"],
            }
        }
    event = _event(handler, path, raw, peer, authorizer)
    time_in_functions()
    started = time.perf_counter()
    try:
        answer = handler.local.functions[function_name].invoke(event)
    except FunctionError:
        return _message(500, "Internal Server Error")  # what API Gateway answers when the integration fails
    finally:
        total_ms, function_ms = (time.perf_counter() - started) * 1000, time_in_functions() * 1000
        handler._timings = f"function;dur={function_ms:.3f}, total;dur={total_ms:.3f}"
    return _response(answer)


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)


def _event(handler: Handler, path: str, raw: bytes, peer: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():  # lower-case; repeated headers joined with commas
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    content_type = headers.get("content-type", "").lower()
    as_text = not raw or content_type.startswith(_TEXT_TYPES)
    try:
        body = raw.decode() if as_text else None
    except UnicodeDecodeError:
        body = None
    now = datetime.now(UTC)
    route_key = f"{handler.command} {path}"
    context: dict[str, Any] = {
        "accountId": ACCOUNT,
        "apiId": API_ID,
        "domainName": headers.get("host", "localhost"),
        "domainPrefix": API_ID,
        "http": {
            "method": handler.command,
            "path": path,
            "protocol": handler.request_version,
            "sourceIp": peer,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    query = handler.path.split("?", 1)[1] if "?" in handler.path else ""
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": context,
        "body": body if body is not None else base64.b64encode(raw).decode(),
        "isBase64Encoded": body is None,
    }


def _response(answer: Any) -> tuple[int, bytes]:
    """The function's answer as API Gateway returns it (payload format 2.0: statusCode, body, isBase64Encoded)."""
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # API Gateway takes any other JSON value as a 200 body
        return 200, json.dumps(answer).encode()
    body = answer.get("body") or ""
    data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode()
    return int(answer["statusCode"]), data
