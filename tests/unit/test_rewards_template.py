"""What template.yaml declares for rewards, and what the local stand-in reads from it."""

from __future__ import annotations

import json

from devserver.stack import Stack


def test_the_order_rule_retries_and_dead_letters():
    stack = Stack()
    function = stack.resources["OrderEventsFunction"]["Properties"]
    rule = function["Events"]["OrderEvents"]["Properties"]
    assert rule["Pattern"]["source"] == ["commerce.orders"]
    assert sorted(rule["Pattern"]["detail-type"]) == ["OrderCancelled", "OrderPlaced", "OrderRefunded"]
    assert rule["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert rule["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["OrderEventsDeadLetterQueue", "Arn"]}
    assert function["DeadLetterQueue"]["TargetArn"] == {"Fn::GetAtt": ["OrderEventsDeadLetterQueue", "Arn"]}
    spec = stack.functions()["OrderEventsFunction"]
    assert spec.dead_letter_queue.endswith(":OrderEventsDeadLetterQueue") and spec.async_retries == 2
    assert spec.events[0].dead_letter.endswith(":OrderEventsDeadLetterQueue") and spec.events[0].bus == "default"


def test_the_reconciliation_runs_hourly_with_the_scheduled_time_as_its_now():
    (event,) = Stack().functions()["ReconcileFunction"].events
    assert (event.type, event.expression) == ("ScheduleV2", "rate(1 hour)")
    assert json.loads(event.input) == {"time": "<aws.scheduler.scheduled-time>"}


def test_the_due_index_is_sparse_on_its_own_keys():
    table = Stack().resources["ReferralsTable"]["Properties"]
    (due,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "Due"]
    assert [k["AttributeName"] for k in due["KeySchema"]] == ["dueShard", "dueAt"]


def test_functions_may_publish_only_to_the_services_bus():
    stack = Stack()
    for name in ("ApiFunction", "OrderEventsFunction", "ReconcileFunction"):
        statements = stack.resources[name]["Properties"]["Policies"][0]["Statement"]
        (publish,) = [s for s in statements if "events:PutEvents" in json.dumps(s["Action"])]
        assert publish["Resource"] == {"Fn::GetAtt": ["ReferralsEventBus", "Arn"]}
    assert stack.environment()["EVENT_BUS_NAME"] == "ReferralsEventBus"


def test_customer_referrals_is_served_by_the_api_function():
    assert Stack().resolvers()[("Customer", "referrals")] == "ApiFunction"
