"""What every AppSync-facing function shares: routing, shaping answers, the one mapping of domain errors to
what a client sees (resolvers/invoke.js raises it with util.error), and the IAM caller check.

Adapter support, not domain: the `referrals` package knows nothing of GraphQL; this module is its edge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from referrals.errors import ReferralError, Refused

INTERNAL_FAILURE = {"type": "InternalFailure", "message": "An internal error occurred", "info": None}


class UnknownField(ReferralError):
    code = "UnknownField"

    def __init__(self) -> None:
        super().__init__("This function does not resolve that field")


class NotAServer(ReferralError):
    code = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("This operation is for servers signing with IAM")


class AppSyncRoutes:
    """Routes an AppSync resolver event to the function for its type and field, with the field's arguments as
    keyword arguments: what Powertools' AppSyncResolver does for us. Importing that resolver imports every
    event handler and event class Powertools has, about 40 ms of each cold start on the request path
    (docs/performance.md), so the functions keep this small equivalent."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Callable[..., Any]] = {}
        self.current_event: dict[str, Any] = {}
        self.lambda_context: Any = None  # the invocation's, while it runs: its remaining time, for what may hang

    def resolver(self, type_name: str, field_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self._routes[(type_name, field_name)] = function
            return function

        return register

    def routes(self) -> list[tuple[str, str]]:
        """The (type, field) pairs this function resolves."""
        return list(self._routes)

    def resolve(self, event: dict[str, Any], context: Any = None) -> Any:
        self.current_event = event
        self.lambda_context = context
        info = event.get("info") or {}
        route = self._routes.get((info.get("parentTypeName"), info.get("fieldName")))
        if route is None:
            raise UnknownField()
        # GraphQL lets a client write an optional argument as an explicit null (`referrals(offset: null)`), which
        # AppSync passes on as null: it means the argument is absent, so the route's default applies. Validation
        # has already refused a null for a non-null argument, so dropping the nulls touches only optional ones.
        arguments = {name: value for name, value in (event.get("arguments") or {}).items() if value is not None}
        return route(**arguments)


def is_http_event(event: Any) -> bool:
    """Whether a Lambda event is API Gateway's HTTP API (payload format 2.0, the HTTP door: http_door), not an
    AppSync resolver's."""
    return isinstance(event, dict) and isinstance((event.get("requestContext") or {}).get("http"), dict)


@dataclass(frozen=True)
class WithWarnings:
    """A field's value plus errors that travel beside it (util.appendError in resolvers/invoke.js)."""

    data: Any
    warnings: list[ReferralError] = field(default_factory=list)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def shape(value: Any) -> Any:
    """Domain dataclasses as GraphQL objects with camelCase keys (AppSync returns only what was selected)."""
    if value is None:
        return None
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {_camel(k): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def graphql_error(error: ReferralError) -> dict[str, Any]:
    """The one place a domain error becomes what the client sees."""
    return {"type": error.code, "message": error.message, "info": error.info or None}


def respond(run: Callable[[], Any], metrics: Any, logger: Any) -> dict[str, Any]:
    """Run a resolver and answer as resolvers/invoke.js expects: `data` (with `warnings`), or one `error`.
    A domain error is the client's to see; anything else is logged and answered with no detail."""
    try:
        answer = run()
    except ReferralError as error:
        metrics.add_metric(name=f"Error{error.code}", unit="Count", value=1)
        logger.info("refused", extra={"errorType": error.code})
        return {"error": graphql_error(error)}
    except Refused:  # AWS refused a request: logged where it happened (storage.client.refusal), no detail here
        metrics.add_metric(name="ErrorRefused", unit="Count", value=1)
        return {"error": dict(INTERNAL_FAILURE)}
    except Exception:
        logger.exception("unexpected failure")
        metrics.add_metric(name="ErrorInternal", unit="Count", value=1)
        return {"error": dict(INTERNAL_FAILURE)}
    if isinstance(answer, WithWarnings):
        return {"data": answer.data, "warnings": [graphql_error(w) for w in answer.warnings]}
    return {"data": answer}


def iam_caller(identity: Any) -> str:
    """The IAM role behind a server's request (the session name may be a person's name or address, so it is
    cut off). AppSync lets only IAM-signed requests reach `@aws_iam` fields; this refuses anything else again,
    IAM credentials from a Cognito identity pool (a shopper's browser may hold those) included."""
    if not isinstance(identity, dict) or not identity.get("userArn") or not identity.get("accountId"):
        raise NotAServer()
    if identity.get("cognitoIdentityPoolId") or identity.get("cognitoIdentityId") or identity.get("sub"):
        raise NotAServer()
    arn = str(identity["userArn"])
    if ":assumed-role/" in arn:
        arn = arn.rsplit("/", 1)[0]
    return arn[:256]
