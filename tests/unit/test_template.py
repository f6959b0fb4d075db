"""Infrastructure assertions on template.yaml: least privilege, storage safety, runtime, resolvers."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLObjectType

from devserver.appsync import load_schema
from devserver.stack import Stack

STACK = Stack()
# Actions AWS offers on no narrower resource than "*".
ONLY_ON_ANY_RESOURCE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in STACK.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in props.get("Policies", []):
                if isinstance(policy, dict) and "Statement" in policy:
                    found += [(name, s) for s in policy["Statement"]]
                else:
                    found.append((name, {"SamPolicyTemplate": policy}))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(("owner", "statement"), _statements(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_wildcard_where_a_narrower_grant_exists(owner, statement):
    assert "SamPolicyTemplate" not in statement, f"{owner}: spell the statement out instead of {statement}"
    actions = _as_list(statement["Action"])
    for action in actions:
        assert action != "*" and not action.endswith(":*"), f"{owner}: wildcard action {action}"
    for resource in _as_list(statement["Resource"]):
        if resource == "*":
            assert set(actions) <= ONLY_ON_ANY_RESOURCE, f"{owner}: {actions} on every resource"


def test_tables_are_safe_to_run():
    tables = STACK.of_type("AWS::DynamoDB::Table")
    assert tables
    for name, props in tables.items():
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["DeletionProtectionEnabled"] == {"Fn::If": ["Protected", True, False]}, name


def test_functions_run_python_313_on_arm64_with_tracing_and_powertools():
    globals_ = STACK.document["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13" and globals_["Architectures"] == ["arm64"]
    assert "Tracing" in globals_
    variables = globals_["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(variables)
    for name, resource in STACK.resources.items():
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::LayerVersion"}:
            assert resource["Metadata"]["BuildMethod"] == "makefile", f"{name} must ship bytecode (packaging/)"


def test_every_resolver_goes_through_the_shared_js_resolver():
    resolvers = STACK.of_type("AWS::AppSync::Resolver")
    assert resolvers
    for name, props in resolvers.items():
        assert props["Runtime"] == {"Name": "APPSYNC_JS", "RuntimeVersion": "1.0.0"}, name
        assert props["CodeS3Location"] == "resolvers/invoke.js", name


def test_every_root_field_of_the_schema_has_a_resolver():
    schema = load_schema(STACK.schema_path().read_text())
    wired = set(STACK.resolvers())
    for type_name in ("Query", "Mutation"):
        root = schema.get_type(type_name)
        assert isinstance(root, GraphQLObjectType)
        for field in root.fields:
            assert (type_name, field) in wired, f"{type_name}.{field} has no resolver in template.yaml"


def test_api_uses_cognito_with_iam_for_servers_and_keeps_introspection_off():
    api = STACK.of_type("AWS::AppSync::GraphQLApi")["GraphQLApi"]
    assert api["AuthenticationType"] == "AMAZON_COGNITO_USER_POOLS"
    assert "AWS_IAM" in {p["AuthenticationType"] for p in api["AdditionalAuthenticationProviders"]}
    assert STACK.parameters["Introspection"] == "DISABLED"
    assert api["QueryDepthLimit"] > 0 and api["ResolverCountLimit"] > 0
