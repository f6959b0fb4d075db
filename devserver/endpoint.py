"""The stand-in's AWS as an endpoint another process can call: what `sam local invoke` needs (docs/local.md).

`make dev` runs moto inside its own process (devserver/aws.py). A function run elsewhere (`sam local invoke`'s
container, or tests/local/test_samples_invoked.py's fresh processes) reaches the same tables, queues, buses and
mail through this server: every request it receives is handed to the in-process moto exactly as an in-process
boto3 request is (moto's botocore stub), so they share one state, and the stand-in's layers on that stub apply
too (one request at a time, stale reads when asked for, transaction tokens). moto's own server mode
(ThreadedMotoServer) shares the state as well, but needs moto[server]'s Flask, which the project does not install.

What a request from another process does not get: the function's role is not checked (devserver/access.py knows
whose request it is only in-process), the invocation's Timeout is not enforced (devserver/lambdas.py), and the
events it puts on a bus reach moto (and /_local/published) but not the template's rules (devserver/eventbridge.py
routes only what /_local/events and the stand-in's own functions send).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devserver.stack import REGION, Stack

# The host name a function uses to reach this endpoint, written into the env-vars file. A `sam local invoke`
# container reaches the host as host.docker.internal (Docker Desktop; on Linux give
# `--add-host host.docker.internal:host-gateway` and REFERRALS_AWS_BIND=0.0.0.0). A process on this machine: 127.0.0.1.
HOST_ENV = "REFERRALS_AWS_HOST"
BIND_ENV = "REFERRALS_AWS_BIND"  # the address this endpoint listens on; 127.0.0.1 unless Docker needs more
PORT_ENV = "AWS_PORT"  # default: the API's PORT + 1
ENV_VARS_ENV = "REFERRALS_ENV_VARS"  # where the env-vars file goes
DEFAULT_HOST = "host.docker.internal"
# The credentials and region written for the functions: moto accepts any, and a real key must never reach it.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# A request says which service it is for in its SigV4 credential scope (the signing name); moto matches it by the
# AWS host name, which is the signing name except for these.
_HOST_OF_SIGNING_NAME = {"ses": "email"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def aws_url(authorization: str | None, path: str) -> str | None:
    """The AWS URL a request signed with this Authorization header was meant for, or None when it is not signed."""
    match = _SCOPE.search(authorization or "")
    if match is None:
        return None
    region, service = match.groups()
    return f"https://{_HOST_OF_SIGNING_NAME.get(service, service)}.{region}.amazonaws.com{path}"


class _Forward(BaseHTTPRequestHandler):
    server_version = "ReferralsLocalAWS/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        if os.environ.get("REFERRALS_ACCESS_LOG"):
            super().log_message(format, *args)

    def _forward(self) -> None:
        from botocore.awsrequest import AWSPreparedRequest
        from botocore.compat import HTTPHeaders
        from moto.core.models import botocore_stubber

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = aws_url(self.headers.get("Authorization"), self.path)
        if url is None:
            return self._answer(
                403, {}, b'{"message": "Sign the request (any credentials; AWS_ACCESS_KEY_ID=testing)"}'
            )
        headers = HTTPHeaders()
        for key, value in self.headers.items():
            if key.lower() != "host":  # the AWS host the request was meant for, as an in-process request names it
                headers[key] = value
        headers["Host"] = url.split("/")[2]
        request = AWSPreparedRequest(method=self.command, url=url, headers=headers, body=body, stream_output=False)
        answer = botocore_stubber.process_request(request)
        if answer is None:  # a service moto does not emulate
            return self._answer(501, {}, json.dumps({"message": f"The local stand-in does not serve {url}"}).encode())
        status, answer_headers, answer_body = answer
        self._answer(status, answer_headers, answer_body)

    def _answer(self, status: int, headers: dict[str, Any], body: str | bytes) -> None:
        data = body.encode() if isinstance(body, str) else body or b""
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in {"content-length", "transfer-encoding", "connection", "server", "date"}:
                self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward  # noqa: N815 - the stdlib's names


class AwsEndpoint(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, bind: str, port: int, public_host: str) -> None:
        super().__init__((bind, port), _Forward)
        self.public_host = public_host

    @property
    def url(self) -> str:
        """What a function calls (AWS_ENDPOINT_URL): this endpoint under the host name it reaches it by."""
        return f"http://{self.public_host}:{self.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, name="local-aws-endpoint", daemon=True).start()


def port(api_port: int) -> int:
    return int(os.environ.get(PORT_ENV) or api_port + 1)


def start(api_port: int) -> AwsEndpoint:
    endpoint = AwsEndpoint(
        os.environ.get(BIND_ENV, "127.0.0.1"), port(api_port), os.environ.get(HOST_ENV) or DEFAULT_HOST
    )
    endpoint.start()
    return endpoint


def env_vars(stack: Stack, endpoint_url: str) -> dict[str, dict[str, str]]:
    """`sam local invoke --env-vars`: each function's variables from template.yaml as the stand-in resolved them,
    with the endpoint, fake credentials and the region. SAM passes a function only the variables its template
    declares (AWS_ENDPOINT_URL is declared empty in Globals for this); the credentials and the region it takes from
    the shell (docs/local.md)."""
    aws = {"AWS_ENDPOINT_URL": endpoint_url, **FAKE_CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    return {name: {**spec.environment, **aws} for name, spec in sorted(stack.functions().items())}


def env_vars_path(api_port: int) -> Path:
    configured = os.environ.get(ENV_VARS_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"referrals-env-vars-{api_port}.json"


def write_env_vars(stack: Stack, endpoint: AwsEndpoint, api_port: int) -> Path:
    path = env_vars_path(api_port)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(env_vars(stack, endpoint.url), indent=2, sort_keys=True) + "\n")
    return path
