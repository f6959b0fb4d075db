"""The HTTP API door: the GraphQL API through API Gateway's HTTP API (payload format 2.0) instead of AppSync.

API Gateway has already checked the caller (the route's JWT or IAM authorizer, or none for the public route).
This function does what AppSync does after that: graphql-core over schema.graphql (the same file, packaged beside
this module by packaging/Makefile), AppSync's limits and its per-provider field rules (graphql_engine), and for
each field with a resolver the AppSync resolver event, sent to the function its data source names in template.yaml
(RESOLVER_FUNCTIONS) through Lambda's Invoke. The resolvers, the domain and their errors stay the AppSync door's:
the answer has AppSync's shape, so a client switches doors by URL and the `Bearer ` prefix (docs/api.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphql_engine
import http_door
import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from referrals.config import load_http_door_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()

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
    settings.engine.limits,
    introspection=settings.engine.introspection,
)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="HttpRequests", unit=MetricUnit.Count, value=1)
    return http_door.serve(event, ENGINE, logger, metrics, frozenset({"POST /iam/graphql"}))
