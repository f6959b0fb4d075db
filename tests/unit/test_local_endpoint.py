"""make dev's AWS endpoint for other processes and its --env-vars file (devserver/endpoint.py; docs/local.md)."""

from __future__ import annotations

from devserver import endpoint
from devserver.stack import Stack

SIGNED = "AWS4-HMAC-SHA256 Credential=testing/20261128/eu-west-1/{}/aws4_request, SignedHeaders=host, Signature=0"


def test_a_request_goes_to_the_service_its_signature_names():
    assert endpoint.aws_url(SIGNED.format("dynamodb"), "/") == "https://dynamodb.eu-west-1.amazonaws.com/"
    # SES signs as `ses` but is served at `email.<region>`, where moto looks for it
    assert endpoint.aws_url(SIGNED.format("ses"), "/") == "https://email.eu-west-1.amazonaws.com/"
    path = "/v1/apis/abc/apikeys"
    assert endpoint.aws_url(SIGNED.format("appsync"), path) == f"https://appsync.eu-west-1.amazonaws.com{path}"
    assert endpoint.aws_url(None, "/") is None
    assert endpoint.aws_url("Bearer x", "/") is None


def test_the_env_vars_file_gives_every_function_its_variables_and_the_endpoint():
    stack = Stack()
    written = endpoint.env_vars(stack, "http://host.docker.internal:4001")
    functions = stack.functions()
    assert set(written) == set(functions)
    for name, spec in functions.items():
        assert set(spec.environment) <= set(written[name]), name
        assert written[name]["AWS_ENDPOINT_URL"] == "http://host.docker.internal:4001"
        assert written[name]["AWS_ACCESS_KEY_ID"] == "testing" and written[name]["AWS_REGION"] == "eu-west-1"


def test_the_template_declares_the_endpoint_variable_empty():
    # SAM passes a function only the variables its template declares; empty is unset to botocore on AWS
    variables = Stack().document["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["AWS_ENDPOINT_URL"] == ""
