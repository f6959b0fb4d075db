"""Drills break things on purpose; botocore's retry waits are skipped (not its retries) to keep them fast."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr("referrals.storage.client._backoff", lambda attempt: None)


@pytest.fixture(autouse=True)
def drills_read_stale(request):
    """Every drill on the in-process moto sees reads as DynamoDB serves them: an eventually consistent read or
    an index query may return the state of a moment ago (devserver/consistency.py, tests/conftest.py)."""
    if "aws_env" in request.fixturenames:
        request.getfixturevalue("stale_reads")


@pytest.fixture
def appsync(aws_env):
    """The AppSync stand-in in-process over moto: GraphQL in, AppSync's answer out, no HTTP in between."""
    from devserver.appsync import AppSyncStandIn, RequestContext, load_schema
    from devserver.lambdas import LocalFunction

    functions = {name: LocalFunction(spec) for name, spec in aws_env.functions().items()}
    api = aws_env.api_settings()
    stand_in = AppSyncStandIn(
        load_schema(aws_env.schema_path().read_text()),
        {key: functions[name] for key, name in aws_env.resolvers().items()},
        {k: int(api.get(k, 0)) for k in ("QueryDepthLimit", "ResolverCountLimit")},
        introspection=False,
    )

    def call(
        query: str,
        variables: dict | None,
        customer_id: str,
        email: str = "me@example.com",
        site: str = "default",
        server: bool = False,
    ):
        """As the customer `customer_id`, or with `server` as an IAM-signed server (devserver.iam's identity)."""
        if server:
            from devserver import iam

            context = RequestContext(iam.identity(iam.key(), "198.51.100.9"), {}, {}, auth_mode="AWS_IAM")
        else:
            claims = {"sub": customer_id, "email": email, "custom:site": site}
            identity = {
                "sub": customer_id,
                "claims": claims,
                "sourceIp": ["203.0.113.7"],
                "defaultAuthStrategy": "ALLOW",
            }
            context = RequestContext(identity, {}, {})
        return stand_in.execute({"query": query, "variables": variables or {}}, context)

    return call
