"""template.yaml and schema.graphql declare what invites and the public lookup need on AWS."""

from __future__ import annotations

from devserver.appsync import load_schema
from devserver.stack import Stack

STACK = Stack()
SCHEMA = load_schema(STACK.schema_path().read_text())


def _directives(node) -> set[str]:
    return {d.name.value for d in node.ast_node.directives or []}


def test_the_api_takes_an_api_key_beside_cognito_and_declares_one():
    api = STACK.api_settings()
    assert api["AuthenticationType"] == "AMAZON_COGNITO_USER_POOLS"
    assert {"AuthenticationType": "API_KEY"} in api["AdditionalAuthenticationProviders"]
    (key,) = STACK.of_type("AWS::AppSync::ApiKey").values()
    assert key["ApiId"] == {"Fn::GetAtt": ["GraphQLApi", "ApiId"]}


def test_only_the_public_lookup_is_open_to_the_api_key():
    offer = SCHEMA.query_type.fields["referralOffer"]
    assert _directives(offer) == {"aws_api_key", "aws_cognito_user_pools"}
    assert _directives(SCHEMA.get_type("ReferralOffer")) == {"aws_api_key", "aws_cognito_user_pools"}
    for type_ in (SCHEMA.query_type, SCHEMA.mutation_type):
        for name, field in type_.fields.items():
            if name != "referralOffer":
                assert "aws_api_key" not in _directives(field), name


def test_both_fields_resolve_through_the_api_function():
    resolvers = STACK.resolvers()
    assert resolvers[("Mutation", "sendReferralEmail")] == "ApiFunction"
    assert resolvers[("Query", "referralOffer")] == "ApiFunction"


def test_invites_table_expires_items_by_ttl():
    table = STACK.of_type("AWS::DynamoDB::Table")["InvitesTable"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_bounces_and_complaints_flow_to_the_suppression_function():
    (destination,) = STACK.of_type("AWS::SES::ConfigurationSetEventDestination").values()
    assert destination["ConfigurationSetName"] == {"Ref": "InvitesConfigurationSet"}
    assert set(destination["EventDestination"]["MatchingEventTypes"]) == {"bounce", "complaint"}
    (rule,) = [r for r in STACK.rules() if r["name"] == "MailEventsRule"]
    assert rule["pattern"] == {"source": ["aws.ses"], "detail-type": ["Email Bounced", "Email Complaint Received"]}
    assert rule["targets"][0]["Arn"].endswith(":MailEventsQueue")
    (event,) = STACK.functions()["MailEventsFunction"].events
    assert event.type == "SQS" and event.queue.endswith(":MailEventsQueue")
    assert STACK.environment()["INVITES_CONFIGURATION_SET"] == "InvitesConfigurationSet"


def test_the_api_function_may_send_only_bulk_templated_mail_of_this_stack():
    statements = STACK.resources["ApiFunction"]["Properties"]["Policies"][0]["Statement"]
    (send,) = [s for s in statements if s["Sid"] == "SendInvites"]
    assert send["Action"] == "ses:SendBulkTemplatedEmail"
    resources = [STACK.resolve(r) for r in send["Resource"]]
    assert "arn:aws:ses:eu-west-1:123456789012:template/local-*" in resources
    assert "arn:aws:ses:eu-west-1:123456789012:configuration-set/InvitesConfigurationSet" in resources
