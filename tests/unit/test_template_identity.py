"""template.yaml keeps customers' identities and data through stack changes, accepts only the storefront's
app client, and says why each checkov finding it skips does not apply (issue 11)."""

from __future__ import annotations

import re

import pytest

from devserver.stack import Stack

STACK = Stack()
EXISTING = {"ExistingUserPoolId": "eu-west-1_AbCdEf123", "ExistingUserPoolClientId": "1example23456789abcdefghij"}
# What holds customers' identities or data: deleting the stack, or a change that replaces or drops one of these
# (setting ExistingUserPoolId drops the stack's own pool), must leave it in place.
KEPT_TYPES = {"AWS::DynamoDB::Table", "AWS::Cognito::UserPool"}


def _kept() -> list[str]:
    return [name for name, resource in STACK.resources.items() if resource["Type"] in KEPT_TYPES]


def test_the_pool_and_the_tables_are_all_covered():
    assert "UserPool" in _kept()
    assert {"CustomersTable", "CodesTable", "ReferralCountsTable", "ReferralsTable", "InvitesTable"} <= set(_kept())


@pytest.mark.parametrize("name", _kept())
def test_customer_data_outlives_the_stack_and_any_replacement(name):
    resource = STACK.resources[name]
    assert resource.get("DeletionPolicy") == "Retain", name
    assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_the_user_pool_is_protected_from_deletion_like_the_tables():
    pool = STACK.resources["UserPool"]["Properties"]
    assert STACK.resolve(pool["DeletionProtection"]) == "ACTIVE"
    throwaway = Stack({"DeletionProtection": "false"}).resources["UserPool"]["Properties"]
    assert Stack({"DeletionProtection": "false"}).resolve(throwaway["DeletionProtection"]) == "INACTIVE"


def test_the_storefront_client_is_created_with_the_pool():
    client = STACK.resources["StorefrontClient"]
    assert client["Type"] == "AWS::Cognito::UserPoolClient"
    assert client["Condition"] == "CreateUserPool"
    assert client["Properties"]["UserPoolId"] == {"Ref": "UserPool"}
    # Storefronts hold its id: it stays with the retained pool, so switching to ExistingUserPoolId can keep it.
    assert client.get("DeletionPolicy") == "Retain" and client.get("UpdateReplacePolicy") == "Retain"


def test_the_storefront_client_is_a_public_client_that_cannot_choose_its_site():
    props = STACK.resources["StorefrontClient"]["Properties"]
    assert props["GenerateSecret"] is False  # a browser cannot keep a secret
    assert props["PreventUserExistenceErrors"] == "ENABLED"
    # Left out, WriteAttributes defaults to every standard attribute: it must be spelled out.
    assert "WriteAttributes" in props and "custom:site" not in props["WriteAttributes"]
    # Readable: the API takes the site from the token the client signs in for (and, as far as we know, Cognito
    # leaves out of a client's ID token what that client may not read).
    assert {"email", "custom:site"} <= set(props["ReadAttributes"])
    assert not {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"} & set(
        props["ExplicitAuthFlows"]
    ), "passwords go through SRP, never in the clear"
    units = props["TokenValidityUnits"]
    assert (props["IdTokenValidity"], units["IdToken"]) == (60, "minutes")
    assert (props["AccessTokenValidity"], units["AccessToken"]) == (60, "minutes")
    assert units["RefreshToken"] == "days" and props["RefreshTokenValidity"] <= 30
    assert props.get("EnableTokenRevocation", True) is True


def _regex(stack: Stack) -> str:
    return stack.api_settings()["UserPoolConfig"]["AppIdClientRegex"]


def test_appsync_accepts_tokens_of_the_stacks_client_only():
    regex = _regex(STACK)  # the stand-in resolves !Ref StorefrontClient to its logical id
    assert re.fullmatch(regex, "StorefrontClient")
    assert not re.fullmatch(regex, "StorefrontClientX") and not re.fullmatch(regex, "AdminClient")
    assert re.search(regex, "xStorefrontClient") is None, "anchored, whichever way AppSync matches"
    api = STACK.resources["GraphQLApi"]["Properties"]["UserPoolConfig"]
    (text, names) = api["AppIdClientRegex"]["Fn::Sub"]
    assert text == "^(${Client}${More})$"
    assert names["Client"] == {
        "Fn::If": ["CreateUserPool", {"Ref": "StorefrontClient"}, {"Ref": "ExistingUserPoolClientId"}]
    }


def test_with_an_existing_pool_appsync_accepts_the_client_given_with_it():
    stack = Stack(EXISTING)
    assert stack.api_settings()["UserPoolConfig"]["UserPoolId"] == EXISTING["ExistingUserPoolId"]
    regex = _regex(stack)
    assert re.fullmatch(regex, EXISTING["ExistingUserPoolClientId"])
    assert not re.fullmatch(regex, "StorefrontClient")
    parameter = STACK.document["Parameters"]["ExistingUserPoolClientId"]
    assert re.fullmatch(parameter["AllowedPattern"], EXISTING["ExistingUserPoolClientId"])
    assert not re.fullmatch(parameter["AllowedPattern"], ".*")  # no regex smuggled in through the id


def test_an_existing_pool_cannot_be_given_without_its_client():
    # An empty AppIdClientRegex would apply no filtering at all: CloudFormation refuses the parameters instead.
    rule = STACK.document["Rules"]["ExistingUserPoolNeedsItsClient"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingUserPoolId"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingUserPoolClientId"}, ""]}]}


def test_the_client_id_is_an_output():
    output = STACK.document["Outputs"]["StorefrontClientId"]
    assert STACK.resolve(output["Value"]) == "StorefrontClient"
    assert Stack(EXISTING).resolve(output["Value"]) == EXISTING["ExistingUserPoolClientId"]


def _skips() -> list[tuple[str, dict]]:
    return [
        (name, skip)
        for name, resource in STACK.resources.items()
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", [])
    ]


def test_checkov_skips_exist():
    assert _skips(), "make template-checks runs checkov; its skips are declared in the template"


@pytest.mark.parametrize(("name", "skip"), _skips(), ids=lambda v: v if isinstance(v, str) else v["id"])
def test_every_checkov_skip_names_a_check_and_says_why(name, skip):
    assert set(skip) == {"id", "comment"}, name
    assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), f"{name}: {skip['id']}"
    assert len(skip["comment"].split()) >= 5, f"{name} skips {skip['id']} without a reason"


def test_bounces_and_complaints_that_keep_failing_are_dead_lettered_not_dropped():
    # checkov CKV_AWS_116, a real finding: a bounce lost after the retries would let invites keep reaching it.
    # The rule hands events to a queue; what the function keeps failing on, and what the rule cannot hand
    # over, both end in the mail events' dead-letter queue.
    function = STACK.resources["MailEventsFunction"]["Properties"]
    source = function["Events"]["BouncesAndComplaints"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["MailEventsQueue", "Arn"]}
    dead_letters = {"Fn::GetAtt": ["MailEventsDeadLetterQueue", "Arn"]}
    redrive = STACK.resources["MailEventsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == dead_letters
    (target,) = STACK.resources["MailEventsRule"]["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": dead_letters}
    assert STACK.resources["MailEventsDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    (statement,) = STACK.resources["MailEventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["MailEventsRule", "Arn"]}}}
