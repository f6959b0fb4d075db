"""Cognito's pre-token-generation trigger: the site in every ID token comes from the app client the shopper signed in
with, never from the shopper (docs/deploy.md, "Sites and sign-in").

Each site's storefront signs in with an app client of its own, named `<anything>-site-<site key>`; the stack's
`StorefrontClient` is `<stack>-site-default`, and `default` stands for the configured default site, whatever its
key. No app client may write `custom:site`, and whatever the attribute holds, this trigger sets the token's
`custom:site` claim to the client's site; a client whose name names no configured site gets no token at all. A
shopper can sign in to another site's storefront, as they could visit it, but cannot put a site into a token that
its storefront does not stand for.

Requests: one DescribeUserPoolClient per app client per environment (a site found is kept: Cognito's read quota for
app clients is small; a refusal is not, so a client renamed or a site added takes effect at once).
"""

from __future__ import annotations

from typing import Any

import observability
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals import clients, storage
from referrals.config import TRIGGER_TIMEOUTS, load_settings

logger = Logger()
tracer = observability.tracer()
metrics = Metrics()
settings = load_settings()
storage.settings()  # the region (and the tables): a function deployed without them stops here, at cold start

SITE_CLAIM = "custom:site"
NAME_MARK = "-site-"
DEFAULT = "default"  # the stack's own client's suffix: the configured default site
_sites_of_clients: dict[tuple[str, str], str] = {}


class NoSiteForClient(Exception):
    """The app client names no configured site: Cognito refuses the sign-in rather than issue a siteless token."""


def site_of_client(user_pool_id: str, client_id: str) -> str | None:
    """The configured site an app client stands for, by its name (`...-site-<key>`); None when it names none."""
    known = (user_pool_id, client_id)
    if known in _sites_of_clients:
        return _sites_of_clients[known]
    cognito = clients.client("cognito-idp", TRIGGER_TIMEOUTS)  # inside Cognito's 5 s for a trigger
    described = cognito.describe_user_pool_client(UserPoolId=user_pool_id, ClientId=client_id)
    name = described["UserPoolClient"].get("ClientName") or ""
    key = name.rsplit(NAME_MARK, 1)[1] if NAME_MARK in name else None
    site = settings.site(None) if key == DEFAULT else settings.sites.get(key or "")
    if site is None:
        return None
    _sites_of_clients[known] = site.key
    return site.key


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    client_id = (event.get("callerContext") or {}).get("clientId") or ""
    site = site_of_client(event.get("userPoolId") or "", client_id)
    if site is None:
        metrics.add_metric(name="TokensRefusedNoSite", unit=MetricUnit.Count, value=1)
        logger.error("an app client that names no configured site asked for a token", extra={"clientId": client_id})
        raise NoSiteForClient(f"app client {client_id} names no configured site")
    written = ((event.get("request") or {}).get("userAttributes") or {}).get(SITE_CLAIM)
    if written not in (None, site):  # set by an administrator for another site: the storefront decides
        logger.warning("the account's custom:site differs from its storefront's", extra={"clientId": client_id})
    logger.info("token site set", extra={"clientId": client_id, "site": site})
    response = event.setdefault("response", {}) or {}
    response["claimsOverrideDetails"] = {"claimsToAddOrOverride": {SITE_CLAIM: site}}
    event["response"] = response
    return event
