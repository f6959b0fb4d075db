"""GraphQL as AppSync serves it, for the two places that serve it without AppSync: the HTTP API door
(functions/http_api) and the local stand-in (devserver/appsync.py). One engine, graphql-core: it validates a
request against schema.graphql with AppSync's limits, lets each field through only for the providers its @aws_*
directives name, builds for each field with a resolver the event AppSync sends (whole context, as
resolvers/invoke.js passes it), calls the resolver and answers in AppSync's shape.

Free of devserver imports: it ships in the layer. Resolvers are plain callables, event in, the function's answer
out (`{"data"...}`, `{"error"...}`, with `warnings`: graphql_adapter.respond); how they are reached (in process,
through Lambda's Invoke) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    default_field_resolver,
    execute,
    parse,
    print_ast,
    validate,
)
from graphql.language import OperationDefinitionNode

# A field's resolver: the AppSync event in, the function's answer out. Anything it raises is an InternalFailure.
Resolver = Callable[[dict[str, Any]], Any]
# AppSync's request size limit; the HTTP door keeps it too (API Gateway would pass up to 10 MB: docs/api.md).
MAX_BODY_BYTES = 1_000_000

# AppSync's own scalars and directives: declared here for graphql-core, never deployed.
APPSYNC_PRELUDE = """
scalar AWSDate
scalar AWSTime
scalar AWSDateTime
scalar AWSTimestamp
scalar AWSEmail
scalar AWSJSON
scalar AWSURL
scalar AWSPhone
scalar AWSIPAddress
directive @aws_iam on FIELD_DEFINITION | OBJECT
directive @aws_api_key on FIELD_DEFINITION | OBJECT
directive @aws_oidc on FIELD_DEFINITION | OBJECT
directive @aws_lambda on FIELD_DEFINITION | OBJECT
directive @aws_cognito_user_pools(cognito_groups: [String]) on FIELD_DEFINITION | OBJECT
directive @aws_auth(cognito_groups: [String]) on FIELD_DEFINITION
directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION
"""


class ResolverError(Exception):
    """A typed error from a resolver, as util.error() in resolvers/invoke.js raises it."""

    def __init__(self, message: str, error_type: str, error_info: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.error_info = error_info


@dataclass
class RequestContext:
    identity: dict[str, Any] | None
    headers: dict[str, str]
    variables: dict[str, Any]
    resolver_calls: int = 0
    # Which of the API's providers let the request in: decides which fields it may touch (@aws_* directives).
    auth_mode: str = "AMAZON_COGNITO_USER_POOLS"
    # Errors that travel beside a field's value (util.appendError in resolvers/invoke.js).
    appended_errors: list[dict[str, Any]] = field(default_factory=list)


def source_ips(forwarded_for: list[str], peer: str) -> list[str]:
    """`identity.sourceIp` as AppSync builds it: "If the request includes a x-forwarded-for header, the source IP
    is a list of IP addresses from the x-forwarded-for header, in addition to the IP address from the TCP
    connection" (AppSync's resolver context reference). Only the last is AppSync's own record of who connected;
    everything before it is whatever the caller, or a proxy in front, wrote (referrals.sources)."""
    written = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    return [*written, peer]


def load_schema(sdl: str) -> GraphQLSchema:
    return build_schema(APPSYNC_PRELUDE + sdl)


def _selection_set(field_nodes: list[FieldNode]) -> tuple[list[str], str]:
    paths: list[str] = []

    def walk(node: FieldNode, prefix: str) -> None:
        for child in node.selection_set.selections if node.selection_set else []:
            if isinstance(child, FieldNode):
                path = f"{prefix}{child.name.value}"
                paths.append(path)
                walk(child, f"{path}/")

    for node in field_nodes:
        walk(node, "")
    graphql = "\n".join(print_ast(n.selection_set) for n in field_nodes if n.selection_set)
    return paths, graphql


def malformed(message: str) -> dict[str, Any]:
    """AppSync's answer to a request it cannot read (HTTP 400)."""
    return {"errors": [{"errorType": "MalformedHttpRequestException", "message": message}]}


def body_problem(body: Any) -> str | None:
    """Why a parsed JSON body is no GraphQL request, as AppSync refuses it: a batch, or not an object."""
    if isinstance(body, list):
        return "Send one operation per request"
    if not isinstance(body, dict):
        return "The body must be a JSON object"
    return None


def fields_for(schema: GraphQLSchema, mode: str, default_auth: str = "AMAZON_COGNITO_USER_POOLS") -> set[str]:
    """The root fields (`Query.referralOffer`) a provider may call, read from the directives at run time."""
    found: set[str] = set()
    roots = [root for root in (schema.query_type, schema.mutation_type) if root is not None]
    for root in roots:
        for name, definition in root.fields.items():
            modes = _auth_modes(definition.ast_node) or _auth_modes(root.ast_node)
            if mode in (modes or {default_auth}):
                found.add(f"{root.name}.{name}")
    return found


class GraphQLEngine:
    def __init__(
        self,
        schema: GraphQLSchema,
        resolvers: Mapping[tuple[str, str], Resolver],
        limits: dict[str, int],
        introspection: bool = True,
        default_auth: str = "AMAZON_COGNITO_USER_POOLS",
    ):
        self.schema = schema
        self.field_resolvers = resolvers
        self.depth_limit = limits.get("QueryDepthLimit", 0)
        self.resolver_limit = limits.get("ResolverCountLimit", 0)
        self.introspection = introspection
        self.default_auth = default_auth

    def _allowed(self, info: GraphQLResolveInfo, mode: str) -> bool:
        """AppSync's rule: a field's @aws_* directives, else its type's, else only the API's default provider."""
        modes = _auth_modes(info.parent_type.fields[info.field_name].ast_node) or _auth_modes(info.parent_type.ast_node)
        return mode in (modes or {self.default_auth})

    def _resolve(self, source: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        if not self._allowed(info, info.context.auth_mode):
            raise ResolverError(
                f"Not Authorized to access {info.field_name} on type {info.parent_type.name}", "Unauthorized"
            )
        function = self.field_resolvers.get((info.parent_type.name, info.field_name))
        if function is None:
            return default_field_resolver(source, info, **arguments)
        context: RequestContext = info.context
        context.resolver_calls += 1
        if self.resolver_limit and context.resolver_calls > self.resolver_limit:
            raise ResolverError(
                f"The request would run more than {self.resolver_limit} resolvers (ResolverCountLimit)",
                "ResolverCountLimitExceeded",
            )
        selection_list, selection_graphql = _selection_set(list(info.field_nodes))
        event = {
            "arguments": arguments,
            "identity": context.identity,
            "source": source,
            "request": {"headers": context.headers, "domainName": None},
            "info": {
                "fieldName": info.field_name,
                "parentTypeName": info.parent_type.name,
                "variables": context.variables,
                "selectionSetList": selection_list,
                "selectionSetGraphQL": selection_graphql,
            },
            "prev": None,
            "stash": {},
        }
        try:
            answer = function(event)
        except Exception as error:  # the function failed (raised, timed out): the client learns no more than that
            raise ResolverError("An internal error occurred", "InternalFailure") from error
        if isinstance(answer, dict) and answer.get("error"):
            problem = answer["error"]
            raise ResolverError(problem.get("message", ""), problem.get("type", "Error"), problem.get("info"))
        for warning in answer.get("warnings") or [] if isinstance(answer, dict) else []:
            appended = ResolverError(warning.get("message", ""), warning.get("type", "Error"), warning.get("info"))
            located = GraphQLError(
                appended.message, info.field_nodes, path=info.path.as_list(), original_error=appended
            )
            context.appended_errors.append(_format(located, None))
        return answer.get("data") if isinstance(answer, dict) else None

    def execute(self, body: dict[str, Any], context: RequestContext) -> dict[str, Any]:
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return {"errors": [{"errorType": "MalformedHttpRequestException", "message": "The request has no query"}]}
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return {
                "errors": [{"errorType": "MalformedHttpRequestException", "message": "variables must be an object"}]
            }
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [_format(error, "ParseError")]}
        # With introspection off, "Did you mean ...?" would name the schema's fields to anyone who misspells one
        hide = not self.introspection
        problems = validate(self.schema, document, hide_suggestions=hide) or self._limits(
            document, body.get("operationName")
        )
        if problems:
            return {"data": None, "errors": [_format(p, "ValidationError") for p in problems]}
        context.variables = variables
        result = execute(
            self.schema,
            document,
            variable_values=variables,
            operation_name=body.get("operationName"),
            context_value=context,
            field_resolver=self._resolve,
            hide_suggestions=hide,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [
                _format(e, "ValidationError" if result.data is None and e.path is None else None) for e in result.errors
            ]
        if context.appended_errors:
            answer["errors"] = [*answer.get("errors", []), *context.appended_errors]
        return answer

    def _limits(self, document: Any, operation_name: str | None) -> list[GraphQLError]:
        """AppSync's QueryDepthLimit and ResolverCountLimit, as template.yaml sets them."""
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        problems: list[GraphQLError] = []
        for operation in operations:
            if operation_name and operation.name and operation.name.value != operation_name:
                continue
            depth = _depth(operation.selection_set)
            if self.depth_limit and depth > self.depth_limit:
                problems.append(GraphQLError(f"Query depth {depth} exceeds the limit of {self.depth_limit}"))
        if not self.introspection and _asks_schema(document):
            problems.append(GraphQLError("GraphQL introspection is not allowed for this API (IntrospectionConfig)"))
        return problems


def _asks_schema(node: Any) -> bool:
    """Whether a document selects __schema or __type anywhere (`__typename` stays allowed, as in AppSync)."""
    if isinstance(node, FieldNode) and node.name.value in {"__schema", "__type"}:
        return True
    children = getattr(node, "definitions", None) or []
    selection_set = getattr(node, "selection_set", None)
    if selection_set is not None:
        children = [*children, *selection_set.selections]
    return any(_asks_schema(child) for child in children)


def _depth(selection_set: Any, level: int = 0) -> int:
    if selection_set is None:
        return level
    deepest = level
    for selection in selection_set.selections:
        deepest = max(deepest, _depth(getattr(selection, "selection_set", None), level + 1))
    return deepest


def _format(error: GraphQLError, default_type: str | None) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, ResolverError):
        error_type, info, message = original.error_type, original.error_info, original.message
    elif original is not None and error.path is not None and not isinstance(original, GraphQLError):
        error_type, info, message = "InternalFailure", None, "An internal error occurred"
    else:
        error_type, info, message = default_type or "ValidationError", None, error.message
    return {
        "path": error.path,
        "data": None,
        "errorType": error_type,
        "errorInfo": info,
        "locations": [{"line": loc.line, "column": loc.column, "sourceName": None} for loc in error.locations or []],
        "message": message,
    }


_AUTH_DIRECTIVES = {
    "aws_api_key": "API_KEY",
    "aws_cognito_user_pools": "AMAZON_COGNITO_USER_POOLS",
    "aws_iam": "AWS_IAM",
    "aws_oidc": "OPENID_CONNECT",
    "aws_lambda": "AWS_LAMBDA",
}


def _auth_modes(node: Any) -> set[str]:
    """The providers a field's or type's @aws_* directives allow; empty when it names none."""
    return {
        _AUTH_DIRECTIVES[d.name.value]
        for d in getattr(node, "directives", None) or []
        if d.name.value in _AUTH_DIRECTIVES
    }
