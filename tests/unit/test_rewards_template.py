"""What template.yaml declares for rewards, and what the local stand-in reads from it."""

from __future__ import annotations

import json

from devserver.stack import Stack


def test_the_order_rule_queues_with_retries_and_dead_letters():
    rule = next(r for r in Stack().rules() if r["name"] == "OrderEventsRule")
    assert (
        rule["pattern"]
        == {"source": ["commerce.orders"], "detail-type": ["OrderPlaced", "OrderCancelled", "OrderRefunded"]}
        and rule["bus"] == "default"
    )
    (target,) = rule["targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"]["Arn"].endswith(":OrderEventsDeadLetterQueue")
    assert target["Arn"].endswith(":OrderEventsQueue")
    (event,) = Stack().functions()["OrderEventsFunction"].events
    assert event.type == "SQS" and event.queue.endswith(":OrderEventsQueue") and event.report_failures


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
