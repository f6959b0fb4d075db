"""The HTTP API door in template.yaml: the same resolvers, limits, schema and callers as the AppSync API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from graphql_engine import fields_for

from devserver.appsync import load_schema
from devserver.stack import ROOT, Stack

STACK = Stack()
DOOR = STACK.functions()["HttpApiFunction"]
SCHEMA = load_schema(STACK.schema_path().read_text())


def _resolver_functions() -> dict[tuple[str, str], str]:
    """RESOLVER_FUNCTIONS as the door reads it, with each ARN back to its function's logical id."""
    wired = json.loads(DOOR.environment["RESOLVER_FUNCTIONS"])
    return {tuple(key.split(".", 1)): arn.rsplit(":", 1)[-1] for key, arn in wired.items()}  # type: ignore[misc]


def _route_functions() -> dict[str, str]:
    """Each route's path -> the function API Gateway sends it to."""
    return {path: name for (_, path), (name, _) in STACK.http_routes().items()}


def test_every_field_is_resolved_by_the_function_appsync_uses():
    # The server route's function invokes the IAM fields' functions (their rights stay theirs) ...
    iam_fields = {tuple(f.split(".", 1)) for f in fields_for(SCHEMA, "AWS_IAM")}
    assert _resolver_functions() == {key: name for key, name in STACK.resolvers().items() if key in iam_fields}
    # ... and the customer and public routes go to the function AppSync invokes for their fields: ApiFunction,
    # which resolves them in-process
    for provider, path in (("AMAZON_COGNITO_USER_POOLS", "/graphql"), ("API_KEY", "/public/graphql")):
        fields = {tuple(f.split(".", 1)) for f in fields_for(SCHEMA, provider)}
        assert {STACK.resolvers()[key] for key in fields} == {_route_functions()[path]} == {"ApiFunction"}


def test_every_field_a_route_opens_has_a_resolver():
    # Read from the schema's directives, so a field someone adds (programmeStats, @aws_iam) must be wired too
    wired = {f"{t}.{f}" for t, f in _resolver_functions()}
    missing = fields_for(SCHEMA, "AWS_IAM") - wired
    assert not missing, f"{sorted(missing)}: add to HttpApiFunction's RESOLVER_FUNCTIONS in template.yaml"
    assert fields_for(SCHEMA, "API_KEY") == {"Query.referralOffer"}


def test_the_door_may_invoke_exactly_the_resolvers_functions():
    (statement,) = [
        s for p in STACK.resources["HttpApiFunction"]["Properties"]["Policies"] for s in p.get("Statement", [])
    ]
    assert statement["Action"] == "lambda:InvokeFunction"
    granted = {resource["Fn::GetAtt"][0] for resource in statement["Resource"]}
    assert granted == set(_resolver_functions().values()) == {"PrivacyFunction", "ReviewFunction"}


def test_the_door_keeps_appsyncs_limits_and_introspection():
    api = STACK.resources["GraphQLApi"]["Properties"]
    for function in ("HttpApiFunction", "ApiFunction"):
        variables = STACK.resources[function]["Properties"]["Environment"]["Variables"]
        assert int(variables["QUERY_DEPTH_LIMIT"]) == api["QueryDepthLimit"]
        assert int(variables["RESOLVER_COUNT_LIMIT"]) == api["ResolverCountLimit"]
        assert variables["INTROSPECTION"] == api["IntrospectionConfig"] == {"Ref": "Introspection"}


def test_the_routes_and_their_authorizers():
    routes = {path: event.authorizer for (method, path), (name, event) in STACK.http_routes().items()}
    assert routes == {"/graphql": "JWT", "/public/graphql": "NONE", "/iam/graphql": "AWS_IAM"}
    assert _route_functions() == {
        "/graphql": "ApiFunction",
        "/public/graphql": "ApiFunction",
        "/iam/graphql": "HttpApiFunction",
    }


def test_the_jwt_authorizer_trusts_the_pool_and_clients_appsync_trusts():
    auth = STACK.resources["HttpApi"]["Properties"]["Auth"]
    jwt = auth["Authorizers"]["CognitoJwt"]["JwtConfiguration"]
    pool = STACK.resources["GraphQLApi"]["Properties"]["UserPoolConfig"]
    issuer_text, issuer_names = jwt["issuer"]["Fn::Sub"]
    assert issuer_text == "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${Pool}"  # aws-cn's too
    assert issuer_names["Pool"] == pool["UserPoolId"]
    clients = pool["AppIdClientRegex"]["Fn::Sub"][1]["Client"]
    with_more, alone = jwt["audience"]["Fn::If"][1:]
    assert jwt["audience"]["Fn::If"][0] == "HasMoreSiteClients"
    assert alone == [clients]
    assert with_more["Fn::Split"][1]["Fn::Sub"] == ["${Client}|${AdditionalSiteClientIds}", {"Client": clients}]
    assert auth["DefaultAuthorizer"] == "CognitoJwt"  # a route added without Auth is a customer's, not public


def test_the_stage_is_throttled():
    settings = STACK.resources["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingBurstLimit": {"Ref": "HttpApiBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "HttpApiRateLimit"},
    }


@pytest.mark.parametrize("function", ["HttpApiFunction", "ApiFunction"])
def test_the_packaged_schema_is_the_projects_one(tmp_path, function):
    # The recipe sam build runs for the door's functions (packaging/Makefile) copies the root schema.graphql in
    env = {**os.environ, "PLATFORM": "", "PYTHON": sys.executable}
    code_dir = STACK.functions()[function].code_dir
    subprocess.run(
        [
            shutil.which("make") or "make",
            "-s",
            "-f",
            str(ROOT / "packaging" / "Makefile"),
            f"build-{function}",
            f"ARTIFACTS_DIR={tmp_path}",
        ],
        check=True,
        env=env,
        cwd=code_dir,
    )
    assert (tmp_path / "schema.graphql").read_bytes() == (ROOT / "schema.graphql").read_bytes()
    assert (tmp_path / "app.py").exists()
    # and what make dev reads is no copy either: a link to the same file
    local = code_dir / "schema.graphql"
    assert local.is_symlink() and local.resolve() == (ROOT / "schema.graphql").resolve()


def test_browsers_may_call_the_door():
    # A page's POST with a token or JSON is preflighted (OPTIONS): API Gateway answers it from this, before the JWT
    # authorizer; without it the browser blocks every call
    cors = STACK.resources["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == {"Ref": "HttpApiAllowedOrigins"}
    assert STACK.document["Parameters"]["HttpApiAllowedOrigins"]["Default"] == "*"
    assert cors["AllowMethods"] == ["POST"] and {"authorization", "content-type"} <= set(cors["AllowHeaders"])
