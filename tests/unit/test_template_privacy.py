"""template.yaml and schema.graphql declare what erasure and export need (docs/privacy.md)."""

from __future__ import annotations

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType

from devserver.appsync import load_schema
from devserver.stack import Stack

STACK = Stack()
SCHEMA = load_schema(STACK.schema_path().read_text())
PRIVACY_FIELDS = {("Mutation", "eraseCustomer"), ("Query", "exportCustomer")}


def _directives(node) -> set[str]:
    return {d.name.value for d in node.ast_node.directives or []}


def _object_types_reached(type_) -> set[str]:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLObjectType):
        return set()
    found = {type_.name}
    for field in type_.fields.values():
        found |= _object_types_reached(field.type)
    return found


def test_erasure_and_export_are_open_to_iam_only():
    for type_name, field_name in PRIVACY_FIELDS:
        field = SCHEMA.get_type(type_name).fields[field_name]
        assert _directives(field) == {"aws_iam"}, field_name
        # AppSync checks every field of the answer too: each type an IAM caller can reach must allow IAM
        for reached in _object_types_reached(field.type):
            assert "aws_iam" in _directives(SCHEMA.get_type(reached)), reached


def test_no_customer_field_is_open_to_iam():
    # A server is nobody's customer: the shopper's fields stay Cognito (and the lookup, the API key) only
    for type_name, field_name in [("Query", "customer"), ("Mutation", "register"), ("Mutation", "sendReferralEmail")]:
        assert "aws_iam" not in _directives(SCHEMA.get_type(type_name).fields[field_name]), field_name
    assert "aws_iam" not in _directives(SCHEMA.get_type("Customer"))


def test_both_fields_resolve_through_the_privacy_function_not_the_customer_facing_one():
    resolvers = STACK.resolvers()
    for key in PRIVACY_FIELDS:
        assert resolvers[key] == "PrivacyFunction"
    # The API function serves shoppers' tokens: it may not delete an account
    api = STACK.resources["ApiFunction"]["Properties"]["Policies"][0]["Statement"]
    for statement in api:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if {"Fn::GetAtt": ["CustomersTable", "Arn"]} in resources:
            assert "dynamodb:DeleteItem" not in statement["Action"]


def test_customer_deleted_is_queued_with_retries_and_a_dead_letter_queue():
    rule = next(r for r in STACK.rules() if r["name"] == "CustomerEventsRule")
    assert (
        rule["pattern"] == {"source": ["commerce.customers"], "detail-type": ["CustomerDeleted"]}
        and rule["bus"] == "default"
    )
    (target,) = rule["targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"]["Arn"].endswith(":CustomerEventsDeadLetterQueue")
    (event,) = STACK.functions()["PrivacyFunction"].events
    assert event.type == "SQS" and event.queue.endswith(":CustomerEventsQueue") and event.report_failures
    assert STACK.environment()["CUSTOMER_EVENTS_DLQ_URL"].endswith("/CustomerEventsDeadLetterQueue")


def test_callers_get_a_policy_for_the_two_fields_only():
    policy = STACK.resources["PrivacyCallerPolicy"]["Properties"]["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Action"] == "appsync:GraphQL"
    fields = sorted(r["Fn::Sub"].rsplit("/types/", 1)[1] for r in statement["Resource"])
    assert fields == ["Mutation/fields/eraseCustomer", "Query/fields/exportCustomer"]


def test_the_invites_table_indexes_claims_by_inviter_keys_only():
    table = STACK.of_type("AWS::DynamoDB::Table")["InvitesTable"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "ByInviter" and index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_tables_whose_items_expire_have_ttl_on_expires_at():
    # docs/privacy.md: items that expire carry expiresAt; accounts, codes and counts last as long as the account
    tables = STACK.of_type("AWS::DynamoDB::Table")
    for name in ("ReferralsTable", "InvitesTable"):
        assert tables[name]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}, name


def test_traces_keep_no_answers_or_errors():
    # Tracer records a handler's return value and exception in X-Ray unless told not to; an export's answer is a
    # customer's whole record
    variables = STACK.document["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
