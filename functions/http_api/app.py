"""The HTTP API door: the GraphQL API through API Gateway's HTTP API (payload format 2.0) instead of AppSync.

API Gateway has already checked the caller (the route's JWT or IAM authorizer, or none for the public route).
This function does what AppSync does after that: graphql-core over schema.graphql (the same file, packaged beside
this module by packaging/Makefile), AppSync's limits and its per-provider field rules (graphql_engine), and for
each field with a resolver the AppSync resolver event, sent to the function its data source names in template.yaml
(RESOLVER_FUNCTIONS) through Lambda's Invoke. The resolvers, the domain and their errors stay the AppSync door's:
the answer has AppSync's shape, so a client switches doors by URL and the `Bearer ` prefix (docs/api.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphql_engine
import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from referrals.config import load_http_door_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()

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

settings = load_http_door_settings()  # a function deployed without its wiring stops here, at cold start
SCHEMA = graphql_engine.load_schema(Path(__file__).with_name("schema.graphql").read_text())


@cache
def lambda_client() -> Any:
    """Lambda's client, made when the first field resolves rather than at import: loading its service model costs
    about a third of a bare boto3 import, which moves from the import to the first request (a request that is
    refused or needs no resolver never pays it). `make bench` reports the import with and without it.

    No retry: an invocation that timed out may have run, and a mutation must not run twice. The read timeout
    outlasts the resolver functions' own (10 s), so Lambda, not the socket, ends a slow one."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "lambda",
        region_name=settings.region,
        config=Config(connect_timeout=2, read_timeout=12, retries={"mode": "standard", "max_attempts": 1}),
    )


class ResolverFunctionFailed(Exception):
    """The resolver's function raised or timed out (Lambda's FunctionError): an InternalFailure for the client."""


def invoke(function_arn: str) -> graphql_engine.Resolver:
    def call(event: dict[str, Any]) -> Any:
        answer = lambda_client().invoke(FunctionName=function_arn, Payload=json.dumps(event, default=str).encode())
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            logger.error(
                "resolver function failed",
                extra={"function": function_arn.rsplit(":", 1)[-1], "errorType": (payload or {}).get("errorType")},
            )
            raise ResolverFunctionFailed(function_arn)
        return payload

    return call


def _field(key: str) -> tuple[str, str]:
    type_name, field_name = key.split(".", 1)
    return type_name, field_name


ENGINE = graphql_engine.GraphQLEngine(
    SCHEMA,
    {_field(key): invoke(arn) for key, arn in settings.resolver_functions.items()},
    {"QueryDepthLimit": settings.query_depth_limit, "ResolverCountLimit": settings.resolver_count_limit},
    introspection=settings.introspection,
)


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


def serve(event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("requestContext") or {}
    route = str(context.get("routeKey") or event.get("routeKey"))
    provider = PROVIDERS.get(route)
    if provider is None:
        return _refused(route, NOT_FOUND)
    source_ip = str((context.get("http") or {}).get("sourceIp") or "")
    identity = _identity(event, provider, source_ip)
    if provider == "AMAZON_COGNITO_USER_POOLS" and identity is None:
        return _refused(route, UNAUTHORIZED)
    if provider == "AWS_IAM" and identity is None:
        return _refused(route, FORBIDDEN)
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
    return _answer(200, ENGINE.execute(body, request))


def _refused(route: str, refusal: dict[str, Any]) -> dict[str, Any]:
    """Logged (route and status, no caller detail): API Gateway refuses these before the function, so one here
    means a route is wired without its authorizer, or a caller found a way around it."""
    logger.warning("refused", extra={"route": route[:100], "status": refusal["statusCode"]})
    return _refusal(refusal)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="HttpRequests", unit=MetricUnit.Count, value=1)
    return serve(event)
