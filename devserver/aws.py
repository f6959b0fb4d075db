"""The embedded AWS: moto in-process, provisioned from template.yaml."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from devserver import access
from devserver.stack import PHYSICAL, REGION, Stack

_request_lock = threading.RLock()
# botocore asks every `before-send` handler and uses the first answer, so moto serves a request even when an
# earlier handler (a fault drill) already answered it. A handler that answers marks the request here.
ANSWERED_ELSEWHERE = "x-referrals-answered-elsewhere"


def request_lock() -> threading.RLock:
    """Held while moto serves a request: hold it to read moto's state (the outbox) consistently."""
    return _request_lock


def _serialise_moto_requests() -> None:
    """moto's backends are not thread-safe; DynamoDB applies each request atomically. Holding a lock
    per request gives the same guarantee while calls from concurrent invocations still interleave."""
    from moto.core.botocore_stubber import BotocoreStubber

    if getattr(BotocoreStubber.process_request, "_serialised", False):
        return
    original: Callable[..., Any] = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        if request.headers.get(ANSWERED_ELSEWHERE):
            return None
        with _request_lock:
            return original(self, request)

    process_request._serialised = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


def fake_credentials() -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        os.environ[key] = value


def start_moto() -> Any:
    """Start moto for this process; returns the mock so the caller may stop it."""
    fake_credentials()
    from moto import mock_aws

    _serialise_moto_requests()
    access.install()  # functions' requests are checked against their roles (devserver/access.py)
    from devserver import consistency

    consistency.install()  # eventually consistent reads, when REFERRALS_STALE_READS asks (devserver/consistency.py)
    from devserver import clock

    clock.install()  # SQS visibility, retention and redrive on the clock drills advance (devserver/clock.py)
    from devserver import idempotency

    idempotency.install()  # a TransactWriteItems' ClientRequestToken, honoured as DynamoDB does (moto ignores it)
    idempotency.reset()
    mock = mock_aws()
    mock.start()
    return mock


def provision(stack: Stack) -> None:
    """Create what the template declares and the functions use: tables (with TTL), queues, buses, mail;
    and from now on hold the functions to the roles it gives them (devserver/access.py)."""
    import boto3

    named = stack.environment()
    _provision_api_keys(stack)  # first: the functions' roles and variables name the ids moto gives them
    # Variables that name such an id were exported before it existed (they share this process's environment)
    os.environ.update({key: value for key, value in stack.environment().items() if named.get(key) != value})
    access.enforce(stack)

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for logical_id, props in stack.of_type("AWS::DynamoDB::Table").items():
        props = stack.resolve(props)
        request: dict[str, Any] = {
            "TableName": logical_id,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=logical_id, TimeToLiveSpecification=ttl)

    sqs = boto3.client("sqs", region_name=REGION)
    queues = {k: stack.resolve(v) for k, v in stack.of_type("AWS::SQS::Queue").items()}
    for logical_id in queues:
        sqs.create_queue(QueueName=logical_id)
    for logical_id, props in queues.items():  # once every queue exists, so a redrive policy finds its target
        attributes = {
            name: json.dumps(props[name]) if name == "RedrivePolicy" else str(props[name])
            for name in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy")
            if name in props
        }
        if attributes:
            sqs.set_queue_attributes(
                QueueUrl=sqs.get_queue_url(QueueName=logical_id)["QueueUrl"], Attributes=attributes
            )

    events = boto3.client("events", region_name=REGION)
    for logical_id in stack.of_type("AWS::Events::EventBus"):
        events.create_event_bus(Name=logical_id)
        capture_published(logical_id)

    ses = boto3.client("ses", region_name=REGION)
    for props in stack.of_type("AWS::SES::Template").values():
        ses.create_template(Template=stack.resolve(props["Template"]))
    for logical_id, props in stack.of_type("AWS::SES::ConfigurationSet").items():
        ses.create_configuration_set(ConfigurationSet={"Name": stack.resolve(props.get("Name")) or logical_id})
    verify_senders(stack)
    _say_what_is_not_emulated(stack)


def _provision_api_keys(stack: Stack) -> None:
    """The GraphQL API and its API keys in moto, so a function that manages a key (ApiKeyKeeperFunction) finds it.
    The stand-in serves GraphQL itself (devserver/appsync.py); these exist for the AppSync control plane only."""
    import boto3

    appsync = boto3.client("appsync", region_name=REGION)
    for logical_id in stack.of_type("AWS::AppSync::GraphQLApi"):
        api = appsync.create_graphql_api(name=logical_id, authenticationType="API_KEY")["graphqlApi"]
        PHYSICAL[(logical_id, "ApiId")] = api["apiId"]
    for logical_id, props in stack.of_type("AWS::AppSync::ApiKey").items():
        key = appsync.create_api_key(apiId=stack.resolve(props["ApiId"]))["apiKey"]
        PHYSICAL[(logical_id, "ApiKeyId")] = key["id"]


# What the template declares that the stand-in does not make, and why that is safe to leave out locally. A type
# that is neither made nor listed here fails tests/unit/test_local_emulation.py until someone decides.
NOT_EMULATED = {
    "AWS::Cognito::UserPool": "tokens are minted locally (devserver/tokens.py)",
    "AWS::Cognito::UserPoolClient": "the local tokens carry its audience",
    "AWS::Logs::LogGroup": "functions log to the console",
    "AWS::CloudWatch::Alarm": "nothing to watch locally; docs/operations.md says what each means",
    "AWS::CloudWatch::Dashboard": "no CloudWatch locally",
    "AWS::SNS::Topic": "alarms are not raised locally",
    "AWS::WAFv2::WebACL": "no WAF locally; the service's own limits stand",
    "AWS::WAFv2::WebACLAssociation": "no WAF locally",
    "AWS::Lambda::Permission": "the stand-in invokes the functions itself",
    "AWS::IAM::Role": "the functions' roles are enforced (devserver/access.py); the API's service roles need none",
    "AWS::IAM::ManagedPolicy": "callers' policies: the local IAM header stands for them",
    "AWS::SQS::QueuePolicy": "EventBridge delivers to the queues directly",
    "AWS::Events::Rule": "devserver/eventbridge.py routes events by the rules' patterns",
    "AWS::SES::ConfigurationSetEventDestination": "bounces and complaints are sent as sample events",
    "AWS::Serverless::LayerVersion": "the layer's code is on the path",
    "AWS::AppSync::GraphQLSchema": "devserver/appsync.py serves the same schema.graphql",
    "AWS::AppSync::DataSource": "devserver/appsync.py calls the functions the resolvers name",
    "AWS::AppSync::Resolver": "devserver/appsync.py resolves each field with its function",
    "AWS::Serverless::HttpApi": "devserver/http_api.py serves its routes under /http, its authorizers included",
}
EMULATED = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::SES::Template",
    "AWS::SES::ConfigurationSet",
    "AWS::AppSync::GraphQLApi",
    "AWS::AppSync::ApiKey",
    "AWS::Serverless::Function",
}


def _say_what_is_not_emulated(stack: Stack) -> None:
    """One line naming what the template declares and the stand-in leaves out (never silently)."""
    import sys

    kinds = sorted({props.get("Type", "") for props in stack.resources.values()} - EMULATED)
    if kinds:
        print("local stand-in: not emulated: " + ", ".join(kinds) + " (devserver/aws.py NOT_EMULATED)", file=sys.stderr)


def published_queue(bus: str) -> str:
    return f"{bus}LocalPublished"


def _cache_jsonpath() -> None:
    """moto parses the JSONPaths of a target's input template on every delivery, and jsonpath_ng builds its
    parser tables anew each time (60 ms a path, half a second an event): parse each distinct path once."""
    import functools

    import jsonpath_ng.ext

    if not hasattr(jsonpath_ng.ext.parse, "cache_info"):
        jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def capture_published(bus: str) -> None:
    """Keep what the service puts on one of its buses, for /_local/published: a catch-all rule on the bus with
    an SQS target (moto delivers to SQS targets), created locally only; the template's rules are untouched."""

    import boto3

    from devserver.stack import ACCOUNT

    _cache_jsonpath()
    queue = published_queue(bus)
    boto3.client("sqs", region_name=REGION).create_queue(QueueName=queue)
    events = boto3.client("events", region_name=REGION)
    rule = f"{bus}-local-published"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
    target = {"Id": "published", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"}
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])


def verify_senders(stack: Stack) -> None:
    """SES sends only from verified identities: verify each configured site's sender, as an operator does
    once per domain on AWS (docs/invites.md), and fail at start-up when a site names an undeclared template."""
    from email.utils import parseaddr

    import boto3

    from referrals.config import MailSettings, parse_settings

    ses = boto3.client("ses", region_name=REGION)
    declared = {t["Name"] for t in ses.list_templates().get("TemplatesMetadata", [])}
    mail = MailSettings(template_prefix=stack.environment().get("MAIL_TEMPLATE_PREFIX", ""))
    for site in parse_settings(stack.parameters.get("SitesConfig")).sites.values():
        ses.verify_email_identity(EmailAddress=parseaddr(site.sender)[1])
        if mail.template_name(site) not in declared:
            raise ValueError(f"site '{site.key}' sends template {mail.template_name(site)}, which template.yaml lacks")
