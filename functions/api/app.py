"""GraphQL resolvers (AppSync, whole context): parse the event, call the domain, shape the answer."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphql_adapter
import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from graphql_adapter import shape

from referrals import customers, sources, storage
from referrals.config import load_mail_settings, load_settings
from referrals.errors import InvitationsNotSent, ReferralError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
app = graphql_adapter.AppSyncRoutes()
settings = load_settings()
mail_settings = load_mail_settings()
storage.settings()  # the tables and the region: a function deployed without them stops here, at cold start


class NotSignedIn(ReferralError):
    code = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("This operation needs a signed-in customer")


class NotAnIdToken(ReferralError):
    code = "Unauthorized"

    def __init__(self, token_use: str) -> None:
        super().__init__(
            f"Sign in with the ID token: a token with token_use {token_use!r} does not identify a customer"
        )


def _caller() -> customers.Caller:
    identity = app.current_event.get("identity") or {}
    subject = identity.get("sub")
    if not subject:
        raise NotSignedIn()
    claims = identity.get("claims") or {}
    # AppSync's user-pool mode takes the pool's access tokens too (no email, no custom attributes): only an ID
    # token says who the customer is. Cognito always sets token_use; a claim set without it is a test's.
    token_use = claims.get("token_use", "id")
    if token_use != "id":  # noqa: S105 - a claim's value, not a password
        raise NotAnIdToken(str(token_use))
    return customers.Caller(
        customer_id=subject, email=claims.get("email"), site_key=claims.get("custom:site"), source_ip=_source_ip()
    )


@app.resolver(type_name="Query", field_name="customer")
def customer() -> dict[str, Any] | None:
    return shape(customers.get_customer(settings, _caller()))


@app.resolver(type_name="Customer", field_name="referrals")
def customer_referrals(offset: int = 0, limit: int = 20) -> dict[str, Any]:
    caller = _caller()  # whose referrals: always the token's subject, never the parent object's
    parent = app.current_event.get("source") or {}
    # The parent `customer` already read the count and its shards; reuse them (for this same customer only) to
    # save a read.
    mine = parent.get("customerId") == caller.customer_id
    known_total = parent.get("referralCount") if mine else None
    known_shards = parent.get("countShards") if mine else None
    from referrals import rewards  # only this field needs it: kept off the cold start of every request

    return shape(rewards.list_referrals(settings, caller.customer_id, offset, limit, known_total, known_shards))


@app.resolver(type_name="Mutation", field_name="register")
def register(input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002 - the schema names it `input`
    caller = _caller()
    outcome = customers.register(
        settings,
        caller,
        full_name=input.get("fullName") or "",
        referral_code=input.get("referralCode"),
        email=input.get("email"),
    )
    if outcome.new_customer:
        metrics.add_metric(name="Registrations", unit=MetricUnit.Count, value=1)
        if input.get("referralCode") and outcome.customer is not None:
            observability.count_for_site("SignUpsWithCode", outcome.customer.site)
    else:
        metrics.add_metric(name=f"RegistrationRefused{outcome.error}", unit=MetricUnit.Count, value=1)
    logger.info("register", extra={"outcome": outcome.error or "CREATED", "withCode": bool(input.get("referralCode"))})
    return shape(outcome)


@app.resolver(type_name="Mutation", field_name="changeReferralCode")
def change_referral_code(code: Any = None) -> dict[str, Any]:  # String! in the schema; a direct invoke may omit it
    outcome = customers.change_referral_code(settings, _caller(), code)
    metrics.add_metric(name=f"CodeChange{outcome.error or 'd'}", unit=MetricUnit.Count, value=1)
    logger.info("changeReferralCode", extra={"outcome": outcome.error or "CHANGED"})
    return shape(outcome)


def _seconds_left(context: Any) -> float:
    """What is left of this invocation, less a second for what follows the send (the give-back, the answer)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return float("inf") if remaining is None else remaining() / 1000 - 1.0


@app.resolver(type_name="Mutation", field_name="sendReferralEmail")
def send_referral_email(emailAddresses: list[str]) -> Any:  # noqa: N803 - the schema names it so
    from referrals import invites  # mail and rate limits: only this field needs them

    context = app.lambda_context
    caller = _caller()
    outcome = invites.send_invites(
        settings, mail_settings, caller, emailAddresses, time_left=lambda: _seconds_left(context)
    )
    metrics.add_metric(name="InvitesSent", unit=MetricUnit.Count, value=len(outcome.sent))
    observability.count_for_site("InvitesSent", customers.site_of(settings, caller).key, len(outcome.sent))
    if outcome.not_sent:
        metrics.add_metric(name="InvitesNotSent", unit=MetricUnit.Count, value=len(outcome.not_sent))
        unconfirmed = sum(reason == "SEND_UNCONFIRMED" for _, reason in outcome.not_sent)
        if unconfirmed:  # SES may have sent them: a rise says SES is slow or failing (docs/invites.md)
            metrics.add_metric(name="InvitesUnconfirmed", unit=MetricUnit.Count, value=unconfirmed)
    # Counts and reasons only: the addresses stay out of the logs.
    logger.info("invites", extra={"sent": len(outcome.sent), "notSent": sorted(r for _, r in outcome.not_sent)})
    if outcome.not_sent:
        return graphql_adapter.WithWarnings(True, [InvitationsNotSent(outcome.not_sent)])
    return True


def _source_ip() -> str | None:
    """Where the request came from, as AppSync recorded it (referrals.sources): the velocity check's source and the
    public lookup's bucket. Never an address the caller wrote into X-Forwarded-For."""
    event = app.current_event
    identity = event.get("identity") or {}
    headers = (event.get("request") or {}).get("headers") or {}
    return sources.source_address(identity.get("sourceIp"), headers.get("x-forwarded-for"), settings.trusted_proxy_hops)


@app.resolver(type_name="Query", field_name="referralOffer")
def referral_offer(code: str) -> dict[str, Any]:
    from referrals import offers

    offer = offers.lookup(settings, code, _source_ip())
    metrics.add_metric(name="OfferLookups" if offer.valid else "OfferLookupsInvalid", unit=MetricUnit.Count, value=1)
    answer = shape(offer)
    observability.count_for_site("OfferLookups", answer.pop("siteKey"))  # for the metric only, not the schema's
    return answer


# ---------- the HTTP API door's customer and public routes (docs/api.md, "The HTTP API door") ----------
# API Gateway sends them here, to this same function: the same resolvers, in this process, with no second
# invocation, and warm environments shared with AppSync's. graphql-core and the schema are loaded by the first
# HTTP request an environment serves (an AppSync event never needs them), once.


HTTP_ROUTES = frozenset({"POST /graphql", "POST /public/graphql"})  # template.yaml: ApiFunction's HttpApi events


@cache
def _http_engine() -> Any:
    import graphql_engine

    from referrals.config import load_http_engine_settings

    engine = load_http_engine_settings()
    schema = graphql_engine.load_schema(Path(__file__).with_name("schema.graphql").read_text())
    resolvers = {key: _in_process for key in app.routes()}
    return graphql_engine.GraphQLEngine(schema, resolvers, engine.limits, introspection=engine.introspection)


def _in_process(event: dict[str, Any]) -> Any:
    """A field of an HTTP request, resolved as AppSync's invocation would resolve it, with this invocation's context."""
    return graphql_adapter.respond(lambda: app.resolve(event, app.lambda_context), metrics, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.APPSYNC_RESOLVER, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if graphql_adapter.is_http_event(event):
        import http_door as door  # graphql-core with it: the first HTTP request of an environment pays for them

        app.lambda_context = context
        # The id API Gateway gives the client (apigw-requestid), so a client's report finds its log lines
        logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
        metrics.add_metric(name="HttpRequests", unit=MetricUnit.Count, value=1)
        return door.serve(event, _http_engine(), logger, metrics, HTTP_ROUTES)
    return graphql_adapter.respond(lambda: app.resolve(event, context), metrics, logger)
