"""Lambda as the stand-in runs it (devserver/lambdas.py), where it must behave as Lambda does:

- one invocation at a time per execution environment, and nothing shared between concurrent ones: the layer's
  modules, Powertools' logger and metrics are one per process here, so concurrent invocations would mix their
  log keys and metrics, which Lambda never does;
- an invocation that runs past the function's Timeout ends as on Lambda: what it wrote stays written, what it
  had yet to do never reaches AWS (its own `except Exception` cannot keep it going), and the caller gets
  `Task timed out after N.00 seconds`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from pathlib import Path

import boto3
import pytest

from devserver.lambdas import FunctionError, LocalFunction
from devserver.stack import REGION, Stack
from tests.conftest import new_id

pytestmark = pytest.mark.usefixtures("aws_env")

# A function that appends a log key and adds a metric named after its caller, waits for the other invocation to
# have done the same (if they run at once), then logs.
TWO_AT_ONCE = """
from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="isolation-drill")
metrics = Metrics(namespace="IsolationDrill", service="isolation-drill")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    mine, theirs = event["mine"], event["theirs"]
    if event["second"]:
        theirs.wait(timeout=2)  # the first has appended its key
    logger.append_keys(caller=event["who"])
    metrics.add_metric(name=f"By{event['who']}", unit="Count", value=1)
    mine.set()
    if not event["second"]:
        theirs.wait(timeout=2)  # the second has appended its key too, if it runs meanwhile
    logger.info("done")
    return event["who"]
"""

# A function that writes, pauses, writes again and so on; a failed write is swallowed, as careless code does.
WRITES_WITH_PAUSES = """
import os
import time

import boto3

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    for n, pause in enumerate(event["pauses"]):
        time.sleep(pause)
        try:
            dynamodb.put_item(TableName=os.environ["CUSTOMERS_TABLE"], Item={"customerId": {"S": f"{event['id']}-{n}"}})
        except Exception:  # the function's own error handling must not keep it running past its deadline
            pass
    time.sleep(event.get("then", 0))
    return "finished"
"""


def _drill(tmp_path: Path, source: str, name: str = "ApiFunction", timeout_s: int | None = None) -> LocalFunction:
    """A function of the drill's own code, with `name`'s settings from template.yaml (its role, its Timeout)."""
    (tmp_path / "drill.py").write_text(source)
    spec = Stack().functions()[name]
    changes = {"code_dir": tmp_path, "module": "drill", "handler": "handler"}
    return LocalFunction(dataclasses.replace(spec, **changes, **({"timeout_s": timeout_s} if timeout_s else {})))


def _written(prefix: str) -> list[str]:
    client = boto3.client("dynamodb", region_name=REGION)
    items = client.scan(TableName="CustomersTable")["Items"]
    return sorted(i["customerId"]["S"] for i in items if i["customerId"]["S"].startswith(prefix))


def test_concurrent_invocations_never_mix_log_keys_or_metrics(tmp_path, capsys):
    function = _drill(tmp_path, TWO_AT_ONCE)
    first_done, second_done = threading.Event(), threading.Event()
    events = [
        {"who": "First", "second": False, "mine": first_done, "theirs": second_done},
        {"who": "Second", "second": True, "mine": second_done, "theirs": first_done},
    ]
    runs = [threading.Thread(target=function.invoke, args=(event,)) for event in events]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=30)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("message") == "done"]
    emitted = [line for line in lines if "_aws" in line]
    # Each invocation's log line carries its own key and its own request id
    assert sorted(line["caller"] for line in logged) == ["First", "Second"]
    assert len({line["function_request_id"] for line in logged}) == 2
    # And each invocation emits its own metric only
    assert sorted(tuple(sorted(k for k in line if k.startswith("By"))) for line in emitted) == [
        ("ByFirst",),
        ("BySecond",),
    ]


def test_a_function_past_its_timeout_is_stopped_and_the_caller_told(tmp_path):
    function = _drill(tmp_path, WRITES_WITH_PAUSES, timeout_s=1)
    me = new_id("drill")
    # When the function writes, then pauses past its 1 s timeout, then tries two more writes
    with pytest.raises(FunctionError) as stopped:
        function.invoke({"id": me, "pauses": [0, 1.2, 0]})
    # Then the caller gets Lambda's timeout error
    assert stopped.value.error_type == "Sandbox.Timedout"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f-]{36} Task timed out after 1\.00 seconds",
        stopped.value.error_message,
    ), stopped.value.error_message
    # And the write made in time stays; the later ones never reached DynamoDB, although the code swallowed errors
    assert _written(me) == [f"{me}-0"]


def test_a_function_that_finishes_late_without_calling_aws_has_timed_out_too(tmp_path):
    function = _drill(tmp_path, WRITES_WITH_PAUSES, timeout_s=1)
    me = new_id("drill")
    with pytest.raises(FunctionError, match=r"Task timed out after 1\.00 seconds$"):
        function.invoke({"id": me, "pauses": [0], "then": 1.2})
    assert _written(me) == [f"{me}-0"]


def test_an_invocation_in_time_is_untouched(tmp_path):
    function = _drill(tmp_path, WRITES_WITH_PAUSES, timeout_s=3)
    me = new_id("drill")
    assert function.invoke({"id": me, "pauses": [0, 0.1, 0]}) == "finished"
    assert _written(me) == [f"{me}-0", f"{me}-1", f"{me}-2"]


def test_timeout_and_memory_come_from_the_template_globals_included():
    functions = Stack().functions()
    assert (functions["ApiFunction"].timeout_s, functions["ApiFunction"].memory_mb) == (10, 512)  # Globals
    assert functions["ReconcileFunction"].timeout_s == 300  # its own Timeout


def test_a_slow_call_past_the_timeout_keeps_what_was_written_and_nothing_after(faults):
    from datetime import UTC, datetime, timedelta

    from tests.integration.helpers import customer, function, register
    from tests.integration.rewards_helpers import Bus, reconcile

    referrer = new_id("referrer")
    code = register(referrer, f"{referrer}@example.com")["data"]["customer"]["referralCode"]
    friend = new_id("friend")
    timeout = function("ApiFunction").spec.timeout_s
    bus = Bus()
    # Given a friend's sign-up (BatchGetItem, TransactWriteItems, PutEvents, BatchWriteItem) whose transaction
    # takes longer than the function's whole Timeout: AWS applies it, the function hears back too late
    faults.arm(2, "slow", attempts=1, operation="TransactWriteItems", seconds=timeout + 1)
    with pytest.raises(FunctionError) as stopped:
        register(friend, f"{friend}@example.com", "Fran Friend", code=code)
    faults.disarm()
    # Then the caller gets Lambda's timeout, after the function's Timeout from template.yaml
    assert stopped.value.error_type == "Sandbox.Timedout"
    assert stopped.value.error_message.endswith(f"Task timed out after {timeout:.2f} seconds")
    # And what the transaction wrote stays written: the friend's account, the referrer's count
    assert customer(friend, f"{friend}@example.com")["data"]["referralCode"]
    assert customer(referrer, f"{referrer}@example.com")["data"]["referralCount"] == 1
    # And what came after never happened: ReferralRegistered was not published (it waits in the outbox)
    assert bus.events("ReferralRegistered", friend) == []
    # Until the reconciliation's outbox sweep publishes it, once
    reconcile(datetime.now(UTC) + timedelta(minutes=10))
    assert len(bus.events("ReferralRegistered", friend)) == 1


def test_through_appsync_a_timed_out_resolver_is_a_resolver_failure(faults):
    from devserver.appsync import AppSyncStandIn, RequestContext, load_schema
    from devserver.samples import load_event

    stack = Stack()
    api_function = LocalFunction(stack.functions()["ApiFunction"])
    stand_in = AppSyncStandIn(
        load_schema(stack.schema_path().read_text()),
        {key: api_function for key, name in stack.resolvers().items() if name == "ApiFunction"},
        {},
    )
    identity = load_event("register.json")["identity"]
    faults.arm(1, "slow", attempts=1, seconds=api_function.spec.timeout_s + 1)
    answer = stand_in.execute(
        {"query": 'mutation { register(input: {fullName: "Tim Out"}) { newCustomer } }'},
        RequestContext({**identity, "sub": new_id()}, {}, {}),
    )
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert (error["errorType"], error["message"]) == ("InternalFailure", "An internal error occurred")
