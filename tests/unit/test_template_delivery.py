"""Events reach their functions through queues (docs/faults.md, "Delivery"): every rule targets a queue whose
redrive policy keeps a message at least a day before its dead-letter queue, and the functions report partial
batch failures."""

from __future__ import annotations

import sys
from pathlib import Path

from devserver.stack import Stack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "layers" / "referrals"))
import queued_events

DAY = 86400


def test_every_rule_targets_a_queue_that_keeps_a_message_a_day():
    stack = Stack()
    queues = stack.of_type("AWS::SQS::Queue")
    rules = stack.rules()
    assert {r["name"] for r in rules} == {"OrderEventsRule", "MailEventsRule", "CustomerEventsRule"}
    for rule in rules:
        for target in rule["targets"]:
            name = target["Arn"].rsplit(":", 1)[-1]
            assert name in queues, f"{rule['name']} targets {target['Arn']}"
            props = stack.resolve(queues[name])
            assert props["SqsManagedSseEnabled"] is True
            redrive = props["RedrivePolicy"]
            assert queued_events.retry_horizon(redrive["maxReceiveCount"]) >= DAY
            assert redrive["maxReceiveCount"] == queued_events.MAX_RECEIVE_COUNT
            assert props["MessageRetentionPeriod"] > DAY + queued_events.BACKOFF_CAP_S
            dead = stack.resolve(queues[redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]])
            assert dead["MessageRetentionPeriod"] == 14 * DAY and dead["SqsManagedSseEnabled"] is True
            assert target["DeadLetterConfig"]["Arn"] == redrive["deadLetterTargetArn"]


def test_no_function_is_invoked_by_a_rule_and_each_queue_fed_one_reports_failed_items():
    stack = Stack()
    functions = stack.functions()
    for spec in functions.values():
        assert all(e.type not in {"EventBridgeRule", "CloudWatchEvent"} for e in spec.events), spec.logical_id
    fed = {spec.logical_id: e for spec in functions.values() for e in spec.events if e.type == "SQS"}
    assert set(fed) == {"OrderEventsFunction", "MailEventsFunction", "PrivacyFunction"}
    for name, event in fed.items():
        assert event.report_failures and event.batch_size == 10, name
        visibility = int(
            stack.resolve(stack.of_type("AWS::SQS::Queue")[event.queue.rsplit(":", 1)[-1]])["VisibilityTimeout"]
        )
        assert visibility >= 6 * functions[name].timeout_s


def test_the_backoff_doubles_to_fifteen_minutes_and_lasts_a_day():
    assert [queued_events.backoff(n) for n in (1, 2, 3, 4, 5, 50)] == [60, 120, 240, 480, 900, 900]
    assert queued_events.retry_horizon(100) == DAY
