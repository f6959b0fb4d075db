"""IAM enforced locally (devserver/access.py): what a function asks of AWS must be allowed by its role in
template.yaml, as SAM deploys it, and a refusal fails as AWS's does."""

from __future__ import annotations

import textwrap

import boto3
import pytest
from botocore.exceptions import ClientError

from devserver import access
from devserver.lambdas import FunctionError, LocalFunction
from devserver.stack import ACCOUNT, REGION, FunctionSpec, Stack
from tests.conftest import new_id

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture(autouse=True)
def enforced(monkeypatch):
    monkeypatch.delenv("REFERRALS_LOCAL_IAM", raising=False)  # on, whatever the shell says


TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table"
QUEUES = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}"


def _dynamodb():
    return boto3.client("dynamodb", region_name=REGION)


def _referral_key() -> dict:
    return {"pk": {"S": f"REFEREE#{new_id()}"}, "sk": {"S": "REFERRAL"}}


def test_an_update_the_role_does_not_allow_fails_as_aws_fails_it_and_changes_nothing(calls):
    # ApiFunction puts, gets and queries referrals, but never updates one
    key = _referral_key()
    _dynamodb().put_item(TableName="ReferralsTable", Item={**key, "status": {"S": "REGISTERED"}})
    calls.reset()
    with access.acting_as("ApiFunction"), pytest.raises(ClientError) as refused:
        _dynamodb().update_item(
            TableName="ReferralsTable",
            Key=key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "EARNED"}},
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/ApiFunctionRole/ApiFunction is not authorized to perform: "
        f"dynamodb:UpdateItem on resource: {TABLE}/ReferralsTable because no identity-based policy allows the "
        "dynamodb:UpdateItem action"
    )
    assert calls.count() == {"UpdateItem": 1}  # one request, not retried
    item = _dynamodb().get_item(TableName="ReferralsTable", Key=key)["Item"]
    assert item["status"] == {"S": "REGISTERED"}  # moto never saw it


def test_what_the_role_allows_goes_through():
    key = _referral_key()
    with access.acting_as("ApiFunction"):
        _dynamodb().put_item(TableName="ReferralsTable", Item={**key, "status": {"S": "REGISTERED"}})
        assert _dynamodb().get_item(TableName="ReferralsTable", Key=key)["Item"]["status"] == {"S": "REGISTERED"}


def test_requests_outside_any_function_are_not_checked():
    key = _referral_key()
    _dynamodb().put_item(TableName="ReferralsTable", Item=key)
    update = {"UpdateExpression": "SET a = :a", "ExpressionAttributeValues": {":a": {"S": "1"}}}
    _dynamodb().update_item(TableName="ReferralsTable", Key=key, **update)


def test_each_item_of_a_transaction_needs_its_own_action_on_its_own_table():
    # ReviewFunction may put and update referrals, but has no ConditionCheckItem, and nothing on the codes table
    referral, code = _referral_key(), {"code": {"S": new_id("code")}}
    put = {"Put": {"TableName": "ReferralsTable", "Item": referral}}
    check = {
        "ConditionCheck": {
            "TableName": "ReferralsTable",
            "Key": referral,
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    update = {
        "Update": {
            "TableName": "CodesTable",
            "Key": code,
            "UpdateExpression": "SET a = :a",
            "ExpressionAttributeValues": {":a": {"S": "1"}},
        }
    }
    with access.acting_as("ReviewFunction"):
        for items, action, resource in [
            ([put, update], "dynamodb:UpdateItem", f"{TABLE}/CodesTable"),
            ([check], "dynamodb:ConditionCheckItem", f"{TABLE}/ReferralsTable"),
        ]:
            with pytest.raises(ClientError) as refused:
                _dynamodb().transact_write_items(TransactItems=items)
            assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
            assert f"perform: {action} on resource: {resource} because" in str(refused.value)
    assert "Item" not in _dynamodb().get_item(TableName="ReferralsTable", Key=referral)  # all or nothing
    with access.acting_as("ReviewFunction"):
        _dynamodb().transact_write_items(TransactItems=[put])  # its own action on its own table: allowed


def test_a_batch_needs_the_batch_action_on_every_table_it_names():
    # ApiFunction batch-reads accounts, codes and counts, never the invites table
    request = {
        "CustomersTable": {"Keys": [{"customerId": {"S": new_id()}}]},
        "InvitesTable": {"Keys": [{"pk": {"S": "x"}}]},
    }
    with access.acting_as("ApiFunction"):
        with pytest.raises(ClientError, match=r"dynamodb:BatchGetItem on resource: .*:table/InvitesTable because"):
            _dynamodb().batch_get_item(RequestItems=request)
        del request["InvitesTable"]
        assert _dynamodb().batch_get_item(RequestItems=request)["Responses"] == {"CustomersTable": []}


def test_a_query_of_an_index_needs_the_index():
    # ApiFunction may query ByReferrerShard; the sparse Due index is the reconciliation's
    def query(index: str) -> dict:
        return _dynamodb().query(
            TableName="ReferralsTable",
            IndexName=index,
            KeyConditionExpression="referrerShard = :r" if index == "ByReferrerShard" else "dueShard = :s",
            ExpressionAttributeValues={":r": {"S": "x"}} if index == "ByReferrerShard" else {":s": {"N": "0"}},
        )

    with access.acting_as("ApiFunction"):
        assert query("ByReferrerShard")["Items"] == []
        with pytest.raises(ClientError, match=r"dynamodb:Query on resource: .*:table/ReferralsTable/index/Due because"):
            query("Due")
    with access.acting_as("ReconcileFunction"):
        assert query("Due")["Items"] == []


def test_sam_gives_a_function_the_right_to_its_own_dead_letter_queue_only():
    # No Policies statement names the queue: SAM adds sqs:SendMessage for the function's DeadLetterQueue
    sqs = boto3.client("sqs", region_name=REGION)
    with access.acting_as("OrderEventsFunction"):
        sqs.send_message(QueueUrl=f"{QUEUES}/OrderEventsDeadLetterQueue", MessageBody="{}")
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=f"{QUEUES}/CustomerEventsDeadLetterQueue", MessageBody="{}")
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert error["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/OrderEventsFunctionRole/OrderEventsFunction is not authorized "
        f"to perform: sqs:sendmessage on resource: arn:aws:sqs:{REGION}:{ACCOUNT}:CustomerEventsDeadLetterQueue "
        "because no identity-based policy allows the sqs:sendmessage action"
    )


def test_mail_and_events_the_role_does_not_allow_are_refused_as_ses_and_eventbridge_refuse_them():
    ses, events = boto3.client("ses", region_name=REGION), boto3.client("events", region_name=REGION)
    sender = "referrals@example.com"
    ses.verify_email_identity(EmailAddress=sender)
    with access.acting_as("MailEventsFunction"):
        with pytest.raises(ClientError) as refused:
            ses.send_bulk_templated_email(
                Source=sender,
                Template="local-ReferralInvite",
                DefaultTemplateData="{}",
                Destinations=[{"Destination": {"ToAddresses": ["friend@example.com"]}}],
            )
        error = refused.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
        assert error["Error"]["Message"] == (
            f"User `arn:aws:sts::{ACCOUNT}:assumed-role/MailEventsFunctionRole/MailEventsFunction' is not "
            f"authorized to perform `ses:SendBulkTemplatedEmail' on resource `arn:aws:ses:{REGION}:{ACCOUNT}:"
            f"identity/{sender}'"
        )
        entry = {"Source": "referrals", "DetailType": "x", "Detail": "{}", "EventBusName": "ReferralsEventBus"}
        with pytest.raises(events.exceptions.ClientError, match=r"events:PutEvents on resource: .*event-bus/Referrals"):
            events.put_events(Entries=[entry])


def test_an_invoked_function_runs_with_its_role(tmp_path):
    # What LocalFunction.invoke runs (init and handler) is checked as the function: make dev and the tests alike
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            import boto3

            def handler(event, context):
                boto3.client("dynamodb").delete_item(TableName="CodesTable", Key={"code": {"S": event["code"]}})
            """
        )
    )
    spec = FunctionSpec("ApiFunction", tmp_path, "app", "handler", {}, 128, 3)
    with pytest.raises(FunctionError) as failed:
        LocalFunction(spec).invoke({"code": "ABC"})
    assert failed.value.error_type == "ClientError"
    assert "AccessDeniedException" in failed.value.error_message
    assert "ApiFunction is not authorized to perform: dynamodb:DeleteItem" in failed.value.error_message
    assert access.caller() is None  # and the identity ends with the invocation


def test_sam_policy_templates_and_managed_policies_expand_as_sam_expands_them(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(
        textwrap.dedent(
            """
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Table:
                Type: AWS::DynamoDB::Table
                Properties:
                  KeySchema: [{AttributeName: id, KeyType: HASH}]
                  AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
              Reader:
                Type: AWS::Serverless::Function
                Properties:
                  Runtime: python3.13
                  Handler: app.handler
                  CodeUri: functions/reader
                  Policies:
                    - DynamoDBReadPolicy: {TableName: !Ref Table}
                    - AWSLambdaBasicExecutionRole
            """
        )
    )
    role = access.roles(Stack(path=template))["Reader"]
    table = f"{TABLE}/Table"
    assert role.decide("dynamodb:GetItem", table) == "allow"
    assert role.decide("dynamodb:Query", f"{table}/index/AnyIndex") == "allow"  # the template grants index/*
    assert role.decide("dynamodb:UpdateItem", table) == "implicit"
    assert role.decide("dynamodb:GetItem", f"{TABLE}/OtherTable") == "implicit"
    assert role.decide("logs:PutLogEvents", "arn:aws:logs:eu-west-1:1:log-group:x") == "allow"


def test_wildcards_mean_what_they_mean_in_iam():
    role = access.Role(
        "Fn",
        "FnRole",
        (
            {"Statement": [{"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": f"{TABLE}/Codes.v?"}]},
            {"Statement": [{"Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": f"{TABLE}/Codes.v2"}]},
        ),
    )
    assert role.decide("dynamodb:getitem", f"{TABLE}/Codes.v1") == "allow"  # actions are case-insensitive
    assert role.decide("dynamodb:GetItem", f"{TABLE}/CodesXv1") == "implicit"  # "." is a dot
    assert role.decide("dynamodb:GetItem", f"{TABLE}/Codes.v10") == "implicit"  # "?" is one character
    assert role.decide("dynamodb:GetItem", f"{TABLE}/Codes.v2") == "deny"  # an explicit deny wins


def test_a_policy_the_check_cannot_judge_stops_it_rather_than_guessing():
    document = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": f"{TABLE}/Codes",
                "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["x"]}},
            }
        ]
    }
    with pytest.raises(access.UnsupportedPolicy, match="Condition"):
        access._check_supported("Fn", document)


def test_requests_need_what_aws_says_they_need():
    needs = access.required(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "A"}},
                {"Update": {"TableName": "B"}},
                {"Delete": {"TableName": "A"}},
                {"ConditionCheck": {"TableName": "B"}},
            ]
        },
    )
    assert needs == [
        ("dynamodb:PutItem", f"{TABLE}/A"),
        ("dynamodb:UpdateItem", f"{TABLE}/B"),
        ("dynamodb:DeleteItem", f"{TABLE}/A"),
        ("dynamodb:ConditionCheckItem", f"{TABLE}/B"),
    ]
    gets = {"TransactItems": [{"Get": {"TableName": "A"}}]}
    assert access.required("dynamodb", "TransactGetItems", gets) == [("dynamodb:GetItem", f"{TABLE}/A")]
    writes = {"RequestItems": {"A": [], "B": []}}
    assert access.required("dynamodb", "BatchWriteItem", writes) == [
        ("dynamodb:BatchWriteItem", f"{TABLE}/A"),
        ("dynamodb:BatchWriteItem", f"{TABLE}/B"),
    ]
    batch = {"QueueUrl": f"{QUEUES}/Q", "Entries": []}
    assert access.required("sqs", "SendMessageBatch", batch) == [
        ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:Q")
    ]
    events = {"Entries": [{"EventBusName": "Bus"}, {}]}
    assert access.required("events", "PutEvents", events) == [
        ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/Bus"),
        ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
    ]
    mail = {"Source": "Shop <shop@example.com>", "Template": "T", "ConfigurationSetName": "S"}
    ses = f"arn:aws:ses:{REGION}:{ACCOUNT}"
    assert access.required("ses", "SendBulkTemplatedEmail", mail) == [
        ("ses:SendBulkTemplatedEmail", f"{ses}:identity/shop@example.com"),
        ("ses:SendBulkTemplatedEmail", f"{ses}:template/T"),
        ("ses:SendBulkTemplatedEmail", f"{ses}:configuration-set/S"),
    ]
