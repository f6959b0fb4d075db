"""The HTTP API door's edge, shared by the functions behind its routes (docs/api.md, "The HTTP API door"): what
AppSync does once a caller is let in, for API Gateway's HTTP API (payload format 2.0). API Gateway has checked the
caller (the route's JWT or IAM authorizer, or none for the public route); this reads what it gave, refuses what
AppSync would refuse (malformed bodies, batches), builds the identity AppSync would give the resolvers, and runs
the engine (graphql_engine) whose resolvers the function supplies. Answers have AppSync's shape.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import graphql_engine
from aws_lambda_powertools.metrics import MetricUnit

# The route API Gateway matched -> the AppSync provider it stands for: decides which fields the caller may reach,
# by the schema's @aws_* directives, read at run time (graphql_engine), never by a list kept here.
PROVIDERS = {
    "POST /graphql": "AMAZON_COGNITO_USER_POOLS",
    "POST /public/graphql": "API_KEY",
    "POST /iam/graphql": "AWS_IAM",
}
# What API Gateway answers itself when its authorizer refuses: a request reaching here without the authorizer's
# context (a route wired without one by mistake) is refused the same way, before any resolver runs.
UNAUTHORIZED = {"statusCode": 401, "message": "Unauthorized"}
FORBIDDEN = {"statusCode": 403, "message": "Forbidden"}
NOT_FOUND = {"statusCode": 404, "message": "Not Found"}
# The slot AppSync's edge fills with its own address in X-Forwarded-For: never read (referrals.sources).
EDGE_HOP = "http-api"


def _answer(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def _refusal(refusal: dict[str, Any]) -> dict[str, Any]:
    return _answer(refusal["statusCode"], {"message": refusal["message"]})


def _identity(event: dict[str, Any], provider: str, source_ip: str) -> dict[str, Any] | None:
    """The resolver event's `identity`, as AppSync builds it for that provider, from what the authorizer gave."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if provider == "AMAZON_COGNITO_USER_POOLS":
        claims = (authorizer.get("jwt") or {}).get("claims") or {}
        if not claims.get("sub"):
            return None
        return {
            "sub": claims["sub"],
            "issuer": claims.get("iss"),
            "username": claims.get("cognito:username") or claims.get("username") or claims["sub"],
            "claims": claims,  # API Gateway gives every claim as a string: the resolvers read only string claims
            "sourceIp": [source_ip],
            "defaultAuthStrategy": "ALLOW",
            "groups": None,
        }
    if provider == "AWS_IAM":
        iam = authorizer.get("iam") or {}
        if not iam.get("userArn") or not iam.get("accountId"):
            return None
        cognito = iam.get("cognitoIdentity") or {}
        return {
            "accountId": iam["accountId"],
            "userArn": iam["userArn"],
            "username": iam.get("userId"),
            "sourceIp": [source_ip],
            # Credentials from a Cognito identity pool: graphql_adapter.iam_caller refuses them, as on AppSync.
            "cognitoIdentityPoolId": cognito.get("identityPoolId"),
            "cognitoIdentityId": cognito.get("identityId"),
            "cognitoIdentityAuthType": None,
            "cognitoIdentityAuthProvider": None,
        }
    return None  # the public route stands for the API key: AppSync gives a null identity


def _body(event: dict[str, Any]) -> tuple[Any, str | None]:
    raw: Any = event.get("body") or ""
    if event.get("isBase64Encoded"):  # API Gateway encodes a body whose content type is not text
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None, "The body is not valid base64"
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > graphql_engine.MAX_BODY_BYTES:
        return None, "The request is larger than 1 MB"
    if not data:
        return {}, None
    try:
        return json.loads(data), None
    except (ValueError, UnicodeDecodeError):
        return None, "The body is not valid JSON"


def serve(
    event: dict[str, Any],
    engine: graphql_engine.GraphQLEngine,
    logger: Any,
    metrics: Any,
    routes: frozenset[str] = frozenset(PROVIDERS),
) -> dict[str, Any]:
    """One request of the door's `routes` that reach this function (template.yaml); any other is Not Found."""
    context = event.get("requestContext") or {}
    route = str(context.get("routeKey") or event.get("routeKey"))
    provider = PROVIDERS.get(route) if route in routes else None
    if provider is None:
        return _refused(route, NOT_FOUND, logger)
    source_ip = str((context.get("http") or {}).get("sourceIp") or "")
    identity = _identity(event, provider, source_ip)
    if provider == "AMAZON_COGNITO_USER_POOLS" and identity is None:
        return _refused(route, UNAUTHORIZED, logger)
    if provider == "AWS_IAM" and identity is None:
        return _refused(route, FORBIDDEN, logger)
    body, problem = _body(event)
    problem = problem or graphql_engine.body_problem(body)
    if problem:
        metrics.add_metric(name="HttpRequestsMalformed", unit=MetricUnit.Count, value=1)
        logger.info("refused", extra={"route": route, "status": 400, "reason": problem})
        return _answer(400, graphql_engine.malformed(problem))
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    # As AppSync's edge would pass it: the connection's address, then the edge's own slot. What the client wrote
    # in X-Forwarded-For is dropped: the address limits count by is the one API Gateway saw (referrals.sources).
    headers["x-forwarded-for"] = f"{source_ip}, {EDGE_HOP}"
    request = graphql_engine.RequestContext(identity, headers, {}, auth_mode=provider)
    return _answer(200, engine.execute(body, request))


def _refused(route: str, refusal: dict[str, Any], logger: Any) -> dict[str, Any]:
    """Logged (route and status, no caller detail): API Gateway refuses these before the function, so one here
    means a route is wired without its authorizer, or a caller found a way around it."""
    logger.warning("refused", extra={"route": route[:100], "status": refusal["statusCode"]})
    return _refusal(refusal)
