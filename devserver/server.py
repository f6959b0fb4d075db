"""The local API: GraphQL as AppSync serves it, plus `/_local/` endpoints that stand in for the AWS consoles.

See ../shared/CONTRACT.md (the interface) and docs/local.md (what it adds).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devserver import aws, tokens
from devserver.endpoint import AwsEndpoint
from devserver.lambdas import time_in_functions
from devserver.stack import FunctionEvent, Stack

MAX_BODY_BYTES = 1_000_000  # AppSync's request size limit is 1 MB (docs/local.md)
HTTP_DOOR = "/http"  # where the HTTP API door's routes are served (../shared/CONTRACT.md)
# The contract's sites without REFERRALS_CONFIG: `default` and `de`, one group with cross-site referrals on.
DEFAULT_SITES = Path(__file__).with_name("sites.json")
FIGURES = "invitesSent offerLookups signUpsWithCode firstQualifyingOrders rewardsEarned rewardsReversed"
FIGURES_QUERY = f"""query ConsoleFigures($site: String!, $from: AWSDate!, $to: AWSDate!) {{
  programmeStats(siteKey: $site, from: $from, to: $to) {{
    siteKey days {{ date figures {{ {FIGURES} }} }} totals {{ {FIGURES} }}
  }}
}}"""


class LocalReferrals:
    """The stack as it runs on one machine: moto provisioned from template.yaml, and the functions."""

    def __init__(self, config_path: str | None = None) -> None:
        parameters = {}
        if os.environ.get("REFERRALS_INTROSPECTION"):  # the template's Introspection parameter, for local tools
            parameters["Introspection"] = os.environ["REFERRALS_INTROSPECTION"]
        parameters["SitesConfig"] = Path(config_path or DEFAULT_SITES).read_text()
        self.stack = Stack(parameters)
        self.mock = aws.start_moto()
        self.aws_endpoint: AwsEndpoint | None = None  # and the env-vars file naming it: set by serve()
        self.env_vars_path: Path | None = None
        os.environ.update(self.stack.environment())
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "false")
        for layer in self.stack.layer_dirs():
            if str(layer) not in sys.path:
                sys.path.insert(0, str(layer))
        aws.provision(self.stack)

        from devserver.appsync import AppSyncStandIn, load_schema
        from devserver.lambdas import LocalFunction

        self.functions = {name: LocalFunction(spec) for name, spec in self.stack.functions().items()}
        from devserver.lambdas import serve_invocations

        serve_invocations(self.functions)  # the HTTP door invokes the resolvers' functions through Lambda's API
        # The HTTP API door's routes, as the template's HttpApi events declare them (served under /http)
        self.http_routes = self.stack.http_routes()
        # The app client AppSync accepts tokens of (UserPoolConfig's AppIdClientRegex): checked, and minted for
        self.app_client = tokens.AppClient.of(self.stack)
        api = self.stack.api_settings()
        self.appsync = AppSyncStandIn(
            load_schema(self.stack.schema_path().read_text()),
            {key: self.functions[name] for key, name in self.stack.resolvers().items()},
            {k: int(api.get(k, 0)) for k in ("QueryDepthLimit", "ResolverCountLimit")},
            introspection=api.get("IntrospectionConfig", "ENABLED") != "DISABLED",
            default_auth=api.get("AuthenticationType", "AMAZON_COGNITO_USER_POOLS"),
        )

    def stop(self) -> None:
        if self.aws_endpoint is not None:
            self.aws_endpoint.shutdown()
        self.mock.stop()

    def describe_functions(self) -> list[dict[str, Any]]:
        """Each function's triggers as the contract lists them. A queue that a rule fills is described as that rule
        (its pattern), with the queue it arrives through: what triggers the function is still the rule."""
        rule_of_queue = {
            target["Arn"]: rule for rule in self.stack.rules() for target in rule["targets"] if "Arn" in target
        }

        def describe(event: FunctionEvent) -> dict[str, Any]:
            rule = rule_of_queue.get(event.queue) if event.type == "SQS" and event.queue else None
            if rule is None:
                return event.describe()
            return {"type": "EventBridgeRule", "pattern": rule["pattern"], "queue": str(event.queue).rsplit(":", 1)[-1]}

        return [
            {"logicalId": name, "events": [describe(e) for e in fn.spec.events]} for name, fn in self.functions.items()
        ]


class Handler(BaseHTTPRequestHandler):
    server_version = "ReferralsLocal/1"
    local: LocalReferrals  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        if os.environ.get("REFERRALS_ACCESS_LOG"):
            super().log_message(format, *args)

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
        self.send_response(status)
        if getattr(self, "_timings", None):
            self.send_header("Server-Timing", self._timings)
            self._timings = None
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> tuple[Any, str | None]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._discard(length)
            return None, "The request is larger than 1 MB"
        raw = self.rfile.read(length) if length else b""
        try:
            return (json.loads(raw) if raw else {}), None
        except ValueError:
            return None, "The body is not valid JSON"

    def _discard(self, length: int, limit: int = MAX_BODY_BYTES) -> None:
        """Read an oversized body before refusing it, so the client sees the answer, not a broken pipe."""
        remaining = min(length, 16 * limit)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        if length > 16 * limit:
            self.close_connection = True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(HTTP_DOOR + "/"):
            from devserver import http_api  # the door's routes are POST only: API Gateway's 404 for the rest

            return self._send(*http_api.serve(self, path.removeprefix(HTTP_DOOR)))
        if path == "/_local/health":
            return self._send(200, {"status": "ok"})
        if path == "/_local/functions":
            return self._send(200, self.local.describe_functions())
        if path in ("/_local/published", "/_local/dead-letters"):
            from devserver import eventbridge  # reward events out, order events refused (docs/rewards.md)

            events = eventbridge.router(self.local)
            return self._send(200, events.published() if path == "/_local/published" else events.dead_letters())
        if path == "/_local/figures":
            return self._figures()
        if path == "/_local/outbox":
            from devserver import outbox  # rendered from the SES templates moto holds (docs/invites.md)

            return self._send(200, outbox.sent())
        from devserver import pages  # the console, the landing page and /_local/config (docs/local.md)

        if pages.serve(self, path):
            return None
        self._send(404, {"message": f"No route for GET {path}"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(HTTP_DOOR + "/"):
            from devserver import http_api  # the HTTP API door, as API Gateway serves it (docs/local.md)

            return self._send(*http_api.serve(self, path.removeprefix(HTTP_DOOR)))
        body, problem = self._body()
        if path == "/graphql":
            return self._graphql(body, problem)
        if problem:
            return self._send(400, {"message": problem})
        invoke = re.fullmatch(r"/_local/invoke/([A-Za-z0-9]+)", path)
        if invoke:
            return self._invoke(invoke.group(1), body)
        if path == "/_local/token":
            return self._token(body)
        if path == "/_local/events":
            from devserver import eventbridge  # PutEvents, routed by the template's rules (docs/rewards.md)

            return self._send(*eventbridge.router(self.local).put_events(body))
        self._send(404, {"message": f"No route for POST {path}"})

    def _graphql(self, body: Any, problem: str | None) -> None:
        from devserver import iam  # server-to-server callers: a stand-in for SigV4 (AWS_IAM), docs/local.md
        from devserver.appsync import RequestContext

        try:
            signed = iam.identity(self.headers.get(iam.HEADER), self.client_address[0])
            if signed is not None:
                signed["sourceIp"] = self._source_ips()
        except iam.InvalidSignature:
            signed, refused = None, True  # a bad signature is refused outright, as AppSync refuses it
        else:
            refused = False
        try:
            claims: dict[str, Any] | None = tokens.verify(self.headers.get("Authorization"), self.local.app_client)
        except tokens.InvalidToken:
            claims = None
        # As AppSync with an API key as an additional provider: a valid token wins, else a valid key
        # (a null identity, and only @aws_api_key fields), else 401 before any resolver runs.
        if refused or (signed is None and claims is None and not api_key_valid(self.headers.get("x-api-key"))):
            return self._send(
                401,
                {
                    "errors": [
                        {"errorType": "UnauthorizedException", "message": "You are not authorized to make this call."}
                    ]
                },
            )
        from graphql_engine import body_problem, malformed  # AppSync's refusals, shared with the HTTP door

        problem = problem or body_problem(body)
        if problem:
            return self._send(400, malformed(problem))
        identity = (
            None
            if claims is None
            else {
                "sub": claims["sub"],
                "issuer": claims.get("iss", tokens.ISSUER),
                "username": claims.get("cognito:username", claims.get("username", claims["sub"])),
                "claims": claims,
                "sourceIp": self._source_ips(),
                "defaultAuthStrategy": "ALLOW",
                "groups": claims.get("cognito:groups"),
            }
        )
        mode = "API_KEY" if claims is None else "AMAZON_COGNITO_USER_POOLS"
        if signed is not None:  # an IAM-signed request: only @aws_iam fields (the stand-in's _allowed)
            identity, mode = signed, "AWS_IAM"
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != iam.HEADER}
        # AppSync's edge appends the viewer's address and then its own to what the client sent (docs/invites.md).
        forwarded = [headers["x-forwarded-for"]] if headers.get("x-forwarded-for") else []
        headers["x-forwarded-for"] = ", ".join([*forwarded, self.client_address[0], "127.0.0.1"])
        time_in_functions()
        started = time.perf_counter()
        answer = self.local.appsync.execute(body, RequestContext(identity, headers, {}, auth_mode=mode))
        # How long the functions took (their AWS calls included) against the whole request: bench/local_api.py
        total_ms, function_ms = (time.perf_counter() - started) * 1000, time_in_functions() * 1000
        self._timings = f"function;dur={function_ms:.3f}, total;dur={total_ms:.3f}"
        self._send(200, answer)

    def _figures(self) -> None:
        """The programme's figures for the console, as a marketing dashboard would read them: programmeStats, signed
        as an IAM caller (the browser never holds the IAM key). `?site=&from=&to=`; by default the last 30 days."""
        from datetime import UTC, datetime, timedelta
        from urllib.parse import parse_qs, urlsplit

        from devserver import iam
        from devserver.appsync import RequestContext

        asked = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        today = datetime.now(UTC).date()
        variables = {
            "site": asked.get("site", "default"),
            "from": asked.get("from", (today - timedelta(days=29)).isoformat()),
            "to": asked.get("to", today.isoformat()),
        }
        caller = iam.identity(iam.key(), self.client_address[0])
        context = RequestContext(caller, {}, {}, auth_mode="AWS_IAM")
        self._send(200, self.local.appsync.execute({"query": FIGURES_QUERY, "variables": variables}, context))

    def _source_ips(self) -> list[str]:
        """`identity.sourceIp` as AppSync builds it: the request's X-Forwarded-For addresses, then the connection's."""
        from devserver.appsync import source_ips

        return source_ips(self.headers.get_all("X-Forwarded-For") or [], self.client_address[0])

    def _invoke(self, name: str, event: Any) -> None:
        from devserver.lambdas import FunctionError

        function = self.local.functions.get(name)
        if function is None:
            return self._send(404, {"message": f"No function {name} in template.yaml"})
        try:
            self._send(200, function.invoke(event))
        except FunctionError as error:
            self._send(502, {"errorType": error.error_type, "errorMessage": error.error_message})

    def _token(self, body: Any) -> None:
        """Mint a local token (a convenience of the stand-in; Cognito issues them on AWS)."""
        if not isinstance(body, dict) or not isinstance(body.get("sub"), str) or not isinstance(body.get("email"), str):
            return self._send(400, {"message": "Give sub and email (and optionally site)"})
        token = tokens.mint(body["sub"], body["email"], body.get("site"), client=self.local.app_client)
        self._send(200, {"token": token})


class LocalServer(ThreadingHTTPServer):
    """One thread per connection, and a listen backlog that holds many clients at once: Python's default of 5
    makes the kernel drop (Linux) or reset (macOS) the connections past it when clients arrive together."""

    request_queue_size = 128
    daemon_threads = True


def serve(port: int, config_path: str | None = None, ready: threading.Event | None = None) -> ThreadingHTTPServer:
    local = LocalReferrals(config_path)
    handler = type("BoundHandler", (Handler,), {"local": local})
    server = LocalServer(("127.0.0.1", port), handler)
    _serve_samples(local, server.server_address[1])
    if os.environ.get("REFERRALS_LOCAL_SCHEDULES", "on") != "off":
        from devserver.scheduler import Scheduler  # the template's rate() schedules, on the clock (docs/rewards.md)

        Scheduler(local.functions).start()
    from devserver import eventbridge  # queued events: retries come back on the clock, polled each second

    eventbridge.router(local).mappings.start()
    if ready:
        ready.set()
    return server


def _serve_samples(local: LocalReferrals, port: int) -> None:
    """What `sam local invoke` against this stack needs (docs/local.md, "sam local invoke"): the records the
    samples in events/ name, the AWS stand-in as an endpoint, and an --env-vars file pointing the functions at it."""
    from devserver import endpoint, seed

    seed.seed(local.functions)
    aws_endpoint = endpoint.start(port)
    local.aws_endpoint = aws_endpoint
    local.env_vars_path = endpoint.write_env_vars(local.stack, aws_endpoint, port)


def port_in_use(port: int, variable: str = "PORT") -> str | None:
    """One line saying the port is taken and what to do, or None when it is free (checked before the setup, which
    takes seconds, so the answer comes at once). `variable` names the setting that moves it."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return (
                f"Port {port} is in use (another make dev?): stop what holds it (lsof -i :{port}), "
                f"or run on another port: {variable}={port + 2} make dev"
            )
    return None


def main() -> None:
    port = int(os.environ.get("PORT", "4000"))
    from devserver import endpoint

    taken = port_in_use(port) or port_in_use(endpoint.port(port), endpoint.PORT_ENV)
    if taken:
        print(taken, file=sys.stderr, flush=True)
        raise SystemExit(1)
    print(f"Starting the local stack from template.yaml on port {port} ...", flush=True)
    server = serve(port, os.environ.get("REFERRALS_CONFIG"))
    print(f"Referrals local API: http://127.0.0.1:{server.server_address[1]}/graphql", flush=True)
    print(f"Console (open in a browser): http://127.0.0.1:{server.server_address[1]}/", flush=True)
    local = server.RequestHandlerClass.local  # type: ignore[attr-defined]
    print(f"AWS stand-in for other processes: {local.aws_endpoint.url}", flush=True)
    print(f"sam local invoke --env-vars {local.env_vars_path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()


def api_key_valid(given: str | None) -> bool:
    """The stand-in's one API key: `REFERRALS_LOCAL_API_KEY`, default `local-api-key` (docs/local.md)."""
    from devserver import pages

    return bool(given) and hmac.compare_digest(given.encode(), pages.api_key().encode())
