"""Shared fixtures. The environment, tables and functions all come from template.yaml (devserver.stack)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

from devserver import aws, consistency, process, samples  # noqa: E402
from devserver.stack import Stack  # noqa: E402

aws.fake_credentials()
os.environ.update(Stack().environment())
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_DEV", "false")


class AwsCalls:
    """Every AWS request made in this process, counted by a botocore event hook."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def reset(self) -> None:
        self.calls.clear()

    def count(self, service: str | None = None) -> Counter[str]:
        return Counter(op for svc, op in self.calls if service is None or svc == service)


AWS_CALLS = AwsCalls()


def _install_call_counter() -> None:
    """Registered with botocore's built-in handlers, so every session and client created later counts."""
    from botocore.handlers import BUILTIN_HANDLERS

    BUILTIN_HANDLERS.append(("before-call", AWS_CALLS))


_install_call_counter()

from tests.faults import FaultInjector  # noqa: E402

FAULTS = FaultInjector()
FAULTS.install()  # before moto is imported, so the injected error answers before moto would


@pytest.fixture
def faults() -> Iterator[FaultInjector]:
    FAULTS.disarm()
    try:
        yield FAULTS
    finally:
        FAULTS.disarm()


@pytest.fixture
def aws_env(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """moto in-process with everything template.yaml declares (reads stale only when REFERRALS_STALE_READS says)."""
    mock = aws.start_moto()
    stack = Stack()
    aws.provision(stack)
    settings = consistency.from_environment(**_stale_reads_defaults(request))
    if settings:
        consistency.enable(settings)
    else:
        consistency.disable()
    AWS_CALLS.reset()
    try:
        yield stack
    finally:
        consistency.disable()
        mock.stop()


def _stale_reads_defaults(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Simulated time (10 ms a DynamoDB request) and a seed per test, so a failure reproduces with the same seed."""
    return {"tick": 0.01, "seed": f"{os.environ.get(consistency.SEED_ENV, '0')}:{request.node.nodeid}"}


@pytest.fixture
def stale_reads(aws_env: Stack, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Eventually consistent reads and index queries may lag up to a second behind writes, as DynamoDB's do
    (devserver/consistency.py; REFERRALS_STALE_READS, when set, gives the settings or turns them off)."""
    defaults = _stale_reads_defaults(request)
    if os.environ.get(consistency.ENV, "").strip():  # REFERRALS_STALE_READS=off turns them off here too
        settings = consistency.from_environment(**defaults)
    else:
        settings = consistency.Staleness(**defaults)
    if settings:
        consistency.enable(settings)
    try:
        yield consistency
    finally:
        consistency.disable()


@pytest.fixture
def calls() -> AwsCalls:
    AWS_CALLS.reset()
    return AWS_CALLS


# A second site, in German, for tests that need two sites with their own sender, template and offer.
OUTLET_SITE = {
    "domain": "outlet.example.de",
    "name": "Outlet",
    "sender": "freunde@outlet.example.de",
    "locale": "de_DE",
    "offerText": "20 % Rabatt",
    "invites": {"template": "ReferralInvite-de_DE"},
}


def load_event(name: str) -> dict[str, Any]:
    return samples.load_event(name)


def new_id(prefix: str = "customer") -> str:
    return f"{prefix}-{uuid.uuid4()}"


# ---------- the local server, from outside ----------


class LocalApi:
    """A client of the local server as a storefront (or the contract's tests) would use it."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def graphql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = token
        return self.request("POST", "/graphql", {"query": query, "variables": variables or {}}, headers)


LOCAL_API_KEY = "local-api-key"  # the stand-in's default (devserver/pages.py api_key)
DOORS = ("appsync", "http")


class Door:
    """One of the API's two doors, as a client switches between them (docs/api.md): AppSync's `/graphql` with the
    raw token, or the HTTP API door's `/http/graphql` with `Bearer <token>`; the same answers either way."""

    def __init__(self, api: LocalApi, name: str, api_key: str = LOCAL_API_KEY) -> None:
        self.api, self.name, self.api_key = api, name, api_key

    @property
    def path(self) -> str:
        return "/graphql" if self.name == "appsync" else "/http/graphql"

    def authorization(self, token: str) -> str:
        return token if self.name == "appsync" or token.startswith("Bearer ") else f"Bearer {token}"

    def send(self, raw: bytes, token: str) -> tuple[int, Any]:
        """A body as it is, to the customer route: for what no JSON encoder would write."""
        headers = {"Content-Type": "application/json", "Authorization": self.authorization(token)}
        return self.api.request("POST", self.path, raw, headers)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return self.api.request(method, path, body, headers)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = self.authorization(token)
        return self.api.request("POST", self.path, {"query": query, "variables": variables or {}}, headers)

    def public(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
        """A visitor without a token: AppSync with the API key, the HTTP door's public route."""
        sent = {"Content-Type": "application/json", **headers}
        path = "/http/public/graphql"
        if self.name == "appsync":
            sent["x-api-key"], path = self.api_key, "/graphql"
        return self.api.request("POST", path, {"query": query, "variables": variables or {}}, sent)

    def refused(self, status: int, body: Any) -> bool:
        """Whether an answer is the door's refusal of a caller it cannot identify, before any resolver ran."""
        if self.name == "http":  # API Gateway's JWT authorizer
            return status == 401 and body == {"message": "Unauthorized"}
        return status == 401 and body["errors"][0]["errorType"] == "UnauthorizedException" and "data" not in body


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest, local_api: LocalApi) -> Door:
    """The same contract case through each door (the local server serves both: docs/local.md)."""
    return Door(local_api, request.param)


@pytest.fixture(scope="session")
def local_api() -> Iterator[LocalApi]:
    """`python -m devserver` in its own process (as `make dev` runs it), on a free port."""
    server = process.start()
    try:
        yield LocalApi(server.base_url)
    finally:
        server.stop()
