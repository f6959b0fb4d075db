"""What an operator needs from template.yaml (docs/operations.md, docs/deploy.md): every function's logs kept a
bounded time, an alarm on every dead-letter queue and every function, a WAF in front of the API when it is on, and
a public API key that cannot lapse."""

from __future__ import annotations

import json
from typing import Any

from devserver.stack import Stack


def _stack() -> Stack:
    return Stack()


def _alarms(stack: Stack) -> list[dict[str, Any]]:
    return [props["Properties"] for props in stack.resources.values() if props["Type"] == "AWS::CloudWatch::Alarm"]


def _dimension(alarm: dict[str, Any]) -> Any:
    (dimension,) = alarm["Dimensions"]
    return dimension["Value"]


def test_every_function_logs_to_a_group_of_its_own_with_the_retention_parameter():
    stack = _stack()
    assert stack.document["Parameters"]["LogRetentionDays"]["Default"] == 30
    for name, props in stack.of_type("AWS::Serverless::Function").items():
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        resource = stack.resources[group]
        assert resource["Type"] == "AWS::Logs::LogGroup", name
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    api_logs = stack.resources["ApiLogGroup"]["Properties"]
    assert api_logs["LogGroupName"] == {"Fn::Sub": "/aws/appsync/apis/${GraphQLApi.ApiId}"}
    assert api_logs["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_dead_letter_queue_and_every_function_has_an_alarm_that_notifies():
    stack = _stack()
    alarms = _alarms(stack)
    dead_letter_queues = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in stack.resources.values()
        if q["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in q.get("Properties", {})
    }
    assert dead_letter_queues == {
        "OrderEventsDeadLetterQueue",
        "MailEventsDeadLetterQueue",
        "CustomerEventsDeadLetterQueue",
    }
    watched = {
        _dimension(a)["Fn::GetAtt"][0]
        for a in alarms
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible" and a["Threshold"] == 0
    }
    assert watched == dead_letter_queues
    for metric in ("Errors", "Throttles"):
        covered = {_dimension(a)["Ref"] for a in alarms if a["Namespace"] == "AWS/Lambda" and a["MetricName"] == metric}
        assert covered == set(stack.of_type("AWS::Serverless::Function")), metric
    topic = [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
    assert all(a["AlarmActions"] == topic for a in alarms)
    named = {a["MetricName"] for a in alarms}
    assert {"EventsUnpublished", "OrderEventsMalformed", "InvitesUnconfirmed", "ErrorRefused"} <= named
    assert {"Reputation.BounceRate", "Reputation.ComplaintRate", "5XXError", "Latency", "Invocations"} <= named
    rates = {a["MetricName"]: a["Threshold"] for a in alarms if a["Namespace"] == "AWS/SES"}
    assert rates == {"Reputation.BounceRate": 0.025, "Reputation.ComplaintRate": 0.0005}  # half SES's review


def test_the_reconciliation_not_running_for_two_hours_alarms():
    (alarm,) = [
        a for a in _alarms(_stack()) if a["MetricName"] == "Invocations" and "Reconcile" in a["AlarmName"]["Fn::Sub"]
    ]
    assert _dimension(alarm) == {"Ref": "ReconcileFunction"}
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 2 * 3600
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["TreatMissingData"] == "breaching"


def test_the_waf_is_associated_with_the_api_when_on():
    stack = _stack()
    assert stack.document["Parameters"]["WafEnabled"]["Default"] == "true"
    association = stack.resources["WebAclAssociation"]
    assert association["Condition"] == "WafOn" and stack.resources["WebAcl"]["Condition"] == "WafOn"
    assert association["Properties"]["ResourceArn"] == {"Fn::GetAtt": ["GraphQLApi", "Arn"]}
    rules = {rule["Name"]: rule for rule in stack.resources["WebAcl"]["Properties"]["Rules"]}
    rate = rules["RequestsPerAddress"]["Statement"]["RateBasedStatement"]
    assert rate == {"Limit": {"Ref": "WafRequestsPerFiveMinutes"}, "AggregateKeyType": "IP"}
    assert "AWSManagedRulesCommonRuleSet" in rules


def test_the_public_api_key_cannot_lapse():
    stack = _stack()
    (not_run,) = [
        a for a in _alarms(stack) if a["MetricName"] == "Invocations" and "Keeper" in a["AlarmName"]["Fn::Sub"]
    ]
    assert _dimension(not_run) == {"Ref": "ApiKeyKeeperFunction"} and not_run["TreatMissingData"] == "breaching"
    assert "Expires" not in stack.resources["PublicApiKey"]["Properties"]  # none to pass at each deploy
    assert "PublicApiKeyExpires" not in stack.document["Parameters"]
    keeper = stack.of_type("AWS::Serverless::Function")["ApiKeyKeeperFunction"]
    (schedule,) = keeper["Events"].values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert keeper["Environment"]["Variables"]["API_KEY_ID"] == {"Fn::GetAtt": ["PublicApiKey", "ApiKeyId"]}
    (statement,) = keeper["Policies"][0]["Statement"]
    assert statement["Action"] == "appsync:UpdateApiKey" and {"Ref": "PublicApiKey"} in statement["Resource"]


def test_the_api_accepts_the_other_sites_clients_only_when_given():
    alone = Stack().api_settings()["UserPoolConfig"]["AppIdClientRegex"]
    assert alone == "^(StorefrontClient)$"
    more = Stack({"AdditionalSiteClientIds": "abc123|def456"}).api_settings()["UserPoolConfig"]["AppIdClientRegex"]
    assert more == "^(StorefrontClient|abc123|def456)$"


def test_the_dashboard_shows_the_programme_per_site_and_the_health():
    stack = _stack()
    body = json.loads(stack.resolve(stack.resources["Dashboard"]["Properties"]["DashboardBody"]))
    expressions = " ".join(
        item["expression"]
        for widget in body["widgets"]
        for line in widget.get("properties", {}).get("metrics", [])
        for item in line
        if isinstance(item, dict) and "expression" in item
    )
    for figure in ("SignUpsWithCode", "InvitesSent", "ReferralRewardEarned", "ReferralReversed"):
        assert f'{{Referrals,service,site}} MetricName="{figure}"' in expressions, figure
    titles = [widget["properties"].get("title", "") for widget in body["widgets"]]
    assert any("Dead letters" in t for t in titles) and any("5xx" in t for t in titles)
