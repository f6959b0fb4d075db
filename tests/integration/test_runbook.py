"""docs/operations.md, the runbook, held to the repository: its commands run (on moto, against a local HTTP server, or
against botocore's API models where they need AWS), its names exist, its queries name what the code logs.

Blocks are found by the comment before them (`<!-- runbook: <name> -->`), so the runbook is tested as written.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, ClassVar

import boto3
import botocore.session
import jmespath
import pytest
from botocore import xform_name
from botocore.stub import Stubber
from graphql import parse, validate

from devserver.appsync import load_schema
from devserver.redrive import main as redrive_main
from devserver.redrive import redrive
from devserver.stack import REGION
from tests.conftest import ROOT, load_event

RUNBOOK = (ROOT / "docs" / "operations.md").read_text()
TEMPLATE_PATH = ROOT / "template.yaml"
BASH = shutil.which("bash") or "/bin/bash"
MAKE = shutil.which("make") or "make"


# ---------- reading the runbook ----------


def block(name: str) -> str:
    """The bash block after `<!-- runbook: name -->`, dedented as a list item's block is indented."""
    found = re.search(rf"^([ ]*)<!-- runbook: {re.escape(name)} -->\n\1```bash\n(.*?)\n\1```", RUNBOOK, re.M | re.S)
    assert found, f"no block named {name} in docs/operations.md"
    indent = len(found.group(1))
    return "\n".join(line[indent:] for line in found.group(2).splitlines())


def bash_blocks() -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(r"```bash\n(.*?)\n[ ]*```", RUNBOOK, re.S)]


def heredoc(code: str) -> str:
    """The Python a block feeds through `<<'EOF'`."""
    found = re.search(r"<<'EOF'\n(.*?)\nEOF", code, re.S)
    assert found
    return found.group(1)


def option(code: str, name: str) -> str:
    """The value given to --name in a (continued) command line, shell quoting removed."""
    words = shlex.split(code.replace("\\\n", " "), comments=False)
    return words[words.index(f"--{name}") + 1]


def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE_PATH.read_text())


def transformed_resources() -> dict[str, Any]:
    """The resources as CloudFormation holds them once SAM's transform ran (schedules, roles and the like it adds)."""
    from samtranslator.translator.transform import transform

    doc = template()
    for resource in doc["Resources"].values():
        properties = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if uri in properties:
                properties[uri] = "s3://bucket/key"  # what `sam package` makes of it

    class Policies:
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(doc, {}, Policies())["Resources"]


# ---------- the names it uses ----------


def test_every_alarm_in_the_template_has_its_entry_in_the_runbook():
    alarms = [k for k, v in template()["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms, "template.yaml declares no alarms"
    missing = [a for a in alarms if f"`{a.removesuffix('Alarm')}`" not in RUNBOOK]
    assert missing == []


def test_every_logical_id_and_output_the_commands_name_exists():
    resources = transformed_resources()
    outputs = template()["Outputs"]
    named = set(re.findall(r"\b(?:res|loggroup|insights) \"?([A-Z]\w+)", RUNBOOK))
    for loop in re.findall(r"for fn in ([A-Za-z ]+);", RUNBOOK):
        named.update(loop.split())
    assert named and sorted(n for n in named if n not in resources) == []
    for name in named & set(re.findall(r"\b(?:loggroup|insights) \"?([A-Z]\w+)", RUNBOOK)):
        assert resources[name]["Type"] == "AWS::Lambda::Function", name
    used_outputs = set(re.findall(r"\bout ([A-Z]\w+)", RUNBOOK))
    assert used_outputs and sorted(used_outputs - set(outputs)) == []


def _source_strings() -> str:
    files = [*ROOT.joinpath("functions").rglob("*.py"), *ROOT.joinpath("layers").rglob("*.py")]
    return "\n".join(f.read_text() for f in files if "__pycache__" not in f.parts)


def test_every_logs_insights_query_names_messages_and_keys_the_code_logs():
    source = _source_strings()
    messages = set(re.findall(r'message = "([^"]+)"', RUNBOOK))
    assert "AWS refused a request" in messages
    assert sorted(m for m in messages if f'"{m}"' not in source) == []
    # Keys grouped or shown: each is a key the code logs (an `extra` key, or a field of the reconciliation's report).
    text = re.sub(r"\\\n\s*", " ", RUNBOOK)
    queries = re.findall(r"\binsights \"?\$?\w+\"? \d+ '([^']+)'", text) + re.findall(r"--query-string '([^']+)'", text)
    assert len(queries) > 10
    keys: set[str] = set()
    for clause in re.findall(r"(?:\bby|\bfields) ([^|]+)", "\n".join(queries)):
        for field in clause.split(","):
            field = field.strip().split(".")[0].strip("`")
            if field and not field.startswith(("@", "bin(")) and re.fullmatch(r"\w+", field):
                keys.add(field)
    powertools = {"message", "level", "exception_name", "timestamp"}
    unknown = [k for k in sorted(keys - powertools) if not re.search(rf'"{k}"|\b{k}: (int|str|bool)', source)]
    assert keys and unknown == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_inside_the_runbook_finds_its_heading():
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", RUNBOOK, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", RUNBOOK))
    assert links and sorted(links - anchors) == []


# ---------- the AWS CLI commands, against botocore's models ----------

GLOBAL_OPTIONS = {"query", "output", "region", "profile", "cli-binary-format", "no-cli-pager", "debug", "endpoint-url"}
PAGINATION_OPTIONS = {"max-items", "starting-token", "page-size"}
CUSTOMIZATIONS = {("configure", "export-credentials"): {"format", "profile"}}


def aws_commands() -> list[tuple[str, str, str, list[str]]]:
    """(service, command, waiter or "", options) of every `aws` command in the runbook, code blocks and prose."""
    text = re.sub(r"\\\n\s*", " ", RUNBOOK)
    found = []
    for match in re.finditer(r"\baws ([a-z0-9]+) ([a-z][a-z0-9-]*)(?: ([a-z][a-z0-9-]*))?", text):
        service, command, waiter = match.group(1), match.group(2), match.group(3) if match.group(2) == "wait" else ""
        rest = text[match.end() :]
        end = re.search(r"\n|`|\baws [a-z]", rest)
        segment = rest[: end.start()] if end else rest
        found.append((service, command, waiter or "", re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", segment)))
    return found


def test_every_aws_command_names_an_operation_and_options_of_the_cli():
    session = botocore.session.get_session()
    commands = aws_commands()
    assert len(commands) > 40
    for service, command, waiter, options in commands:
        if (service, command) in CUSTOMIZATIONS:
            assert set(options) <= CUSTOMIZATIONS[service, command], (service, command, options)
            continue
        model = session.get_service_model(service)
        by_cli_name = {xform_name(name, "-"): name for name in model.operation_names}
        if command == "wait":
            waiters = session.get_waiter_model(service)
            names = {xform_name(name, "-"): name for name in waiters.waiter_names}
            assert waiter in names, (service, waiter)
            operation = model.operation_model(waiters.get_waiter(names[waiter]).operation)
        else:
            assert command in by_cli_name, (service, command)
            operation = model.operation_model(by_cli_name[command])
        members = {xform_name(m, "-") for m in (operation.input_shape.members if operation.input_shape else {})}
        allowed = members | GLOBAL_OPTIONS
        paginators = session.get_paginator_model(service)._paginator_config if command != "wait" else {}
        if operation.name in paginators:
            allowed |= PAGINATION_OPTIONS
        assert sorted(set(options) - allowed) == [], (service, command)


# ---------- the shell helpers ----------


def test_the_shell_blocks_parse():
    for code in bash_blocks():
        result = subprocess.run([BASH, "-n"], input=code, text=True, capture_output=True)
        assert result.returncode == 0, (code[:200], result.stderr)


def test_the_insights_helper_prints_each_row_without_its_pointer():
    expression = re.search(r"get-query-results --query-id \"\$id\" --query '([^']+)' --output text", block("setup"))
    answer = {
        "status": "Complete",
        "results": [
            [
                {"field": "@timestamp", "value": "2026-11-28 09:00"},
                {"field": "message", "value": "reconciled"},
                {"field": "@ptr", "value": "CmQKKwo"},
            ],
            [{"field": "@timestamp", "value": "2026-11-28 10:00"}, {"field": "@ptr", "value": "CmQKKxo"}],
        ],
    }
    assert expression
    assert jmespath.search(expression.group(1), answer) == [["2026-11-28 09:00", "reconciled"], ["2026-11-28 10:00"]]


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.seen.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data": {}}')

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def recorder() -> Any:
    _Recorder.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/graphql"
    finally:
        server.shutdown()
        server.server_close()


def test_gql_sends_a_request_signed_for_appsync_with_the_clis_credentials(recorder, tmp_path):
    # A stand-in for `aws configure export-credentials --format env`, which prints the resolved credentials.
    fake_aws = tmp_path / "aws"
    fake_aws.write_text(
        "#!/bin/sh\n"
        'echo "export AWS_ACCESS_KEY_ID=AKIDEXAMPLE"\n'
        'echo "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI"\n'
        'echo "export AWS_SESSION_TOKEN=session-token"\n'
    )
    fake_aws.chmod(0o755)
    script = (
        block("setup")
        + "\ngql 'mutation R($id: ID!) { reviewReferral(refereeId: $id, decision: RELEASE) { status } }' "
        + '\'{"id": "friend-1"}\'\n'
        + "gql '{ __typename }'\n"
        + 'echo "left behind: ${AWS_SECRET_ACCESS_KEY:-nothing}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PATH=f"{tmp_path}:{os.environ['PATH']}", GRAPHQL_URL=recorder)
    result = subprocess.run([BASH, "-c", script], text=True, capture_output=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "left behind: nothing" in result.stdout  # the credentials stay in gql's subshell
    (headers, body), (_, second) = _Recorder.seen
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert f"/{REGION}/appsync/aws4_request" in headers["Authorization"]
    assert headers["x-amz-security-token"] == "session-token"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "query": "mutation R($id: ID!) { reviewReferral(refereeId: $id, decision: RELEASE) { status } }",
        "variables": {"id": "friend-1"},
    }
    assert json.loads(second)["variables"] == {}


def test_every_graphql_document_is_valid_against_the_schema():
    schema = load_schema((ROOT / "schema.graphql").read_text())
    calls = re.findall(r"^\s*gql '([^']+)'(?:\s*\\\n\s*|\s+)'([^']*)'", RUNBOOK, re.M)
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{\"query\".*?\})'", RUNBOOK)]
    documents = [(doc, json.loads(variables)) for doc, variables in calls] + [(b["query"], {}) for b in bodies]
    assert len(calls) >= 3 and len(bodies) >= 2
    for document, variables in documents:
        parsed = parse(document)
        assert validate(schema, parsed) == [], document
        declared = {v.variable.name.value for d in parsed.definitions for v in d.variable_definitions or []}
        assert declared == set(variables), document


# ---------- dead letters: inspect, redrive, remove ----------


@pytest.mark.usefixtures("aws_env")
def test_make_redrive_runs_the_module_with_the_queues_as_given():
    dlq, queue = "https://sqs.eu-west-1.amazonaws.com/1/Dlq", "https://sqs.eu-west-1.amazonaws.com/1/Queue"
    plain = subprocess.run(
        [MAKE, "-n", "redrive", f"DLQ={dlq}", f"QUEUE={queue}"], cwd=ROOT, text=True, capture_output=True
    )
    moving = subprocess.run(
        [MAKE, "-n", "redrive", f"DLQ={dlq}", f"QUEUE={queue}", "MOVE_TASK=1"],
        cwd=ROOT,
        text=True,
        capture_output=True,
    )
    (line,) = [line for line in plain.stdout.splitlines() if "-m devserver.redrive" in line]
    assert line.endswith(f"-m devserver.redrive '{dlq}' '{queue}' ")
    assert f"-m devserver.redrive '{dlq}' '{queue}' --move-task" in moving.stdout
    assert 'make redrive DLQ="$(out OrderEventsDeadLetterQueueUrl)" QUEUE="$(out OrderEventsQueueUrl)"' in block(
        "redrive"
    )


def test_the_redrive_command_line_moves_dead_letters_by_url(aws_env, capsys):
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_url(QueueName="OrderEventsDeadLetterQueue")["QueueUrl"]
    queue = sqs.get_queue_url(QueueName="OrderEventsQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody='{"detail": {}}')
    # As `make redrive DLQ=<url> QUEUE=<url>` runs it
    redrive_main([dlq, queue])
    assert capsys.readouterr().out.strip() == "1"
    (moved,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert moved["Body"] == '{"detail": {}}'


def test_the_move_task_is_asked_for_with_both_queues_arns():
    sqs = botocore.session.get_session().create_client(
        "sqs", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    dlq_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/referrals-OrderEventsDeadLetterQueue-X"
    dlq_arn = "arn:aws:sqs:eu-west-1:123456789012:referrals-OrderEventsDeadLetterQueue-X"
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/referrals-OrderEventsQueue-Y"
    queue_arn = "arn:aws:sqs:eu-west-1:123456789012:referrals-OrderEventsQueue-Y"
    with Stubber(sqs) as stub:  # moto has no StartMessageMoveTask; the stub checks the request against the model
        stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": dlq_arn}},
            {"QueueUrl": dlq_url, "AttributeNames": ["QueueArn"]},
        )
        stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": queue_arn}},
            {"QueueUrl": queue_url, "AttributeNames": ["QueueArn"]},
        )
        stub.add_response(
            "start_message_move_task", {"TaskHandle": "handle-1"}, {"SourceArn": dlq_arn, "DestinationArn": queue_arn}
        )
        assert redrive(sqs, dlq_url, queue_url, move_task=True) == "handle-1"
        stub.assert_no_pending_responses()


def _receive_as(code: str, sqs: Any, queue_url: str) -> dict[str, Any]:
    """The receive-message of a runbook block, through boto3 (the CLI's options are the API's members)."""
    line = next(part for part in code.replace("\\\n", " ").split("\n") if "receive-message" in part)
    words = shlex.split(line)
    args = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": int(words[words.index("--max-number-of-messages") + 1]),
        "WaitTimeSeconds": int(words[words.index("--wait-time-seconds") + 1]),
        "VisibilityTimeout": int(words[words.index("--visibility-timeout") + 1]),
        "MessageAttributeNames": [words[words.index("--message-attribute-names") + 1]],
    }
    if "--message-system-attribute-names" in words:
        args["MessageSystemAttributeNames"] = [words[words.index("--message-system-attribute-names") + 1]]
    return sqs.receive_message(**args)


def _dead_letters_of_two_kinds() -> tuple[Any, str]:
    """A malformed order event the function dead-lettered itself, and one as SQS moves a record after a day."""
    from tests.integration.helpers import function

    assert function("OrderEventsFunction").invoke(load_event("order-placed-malformed.json"))["outcome"] == "MALFORMED"
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_url(QueueName="OrderEventsDeadLetterQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(load_event("order-placed.json")))
    return sqs, dlq


@pytest.mark.usefixtures("aws_env")
def test_the_peek_shows_each_dead_letters_reason_and_problems():
    sqs, dlq = _dead_letters_of_two_kinds()
    code = block("peek")
    rows = jmespath.search(option(code.split("\n", 2)[2], "query"), _receive_as(code, sqs, dlq))
    by_reason = {row["reason"]: row for row in rows}
    assert set(by_reason) == {"MALFORMED", None}
    assert "total.amount" in by_reason["MALFORMED"]["problems"]  # the sample's amount is a JSON number
    assert json.loads(by_reason["MALFORMED"]["body"])["id"] == load_event("order-placed-malformed.json")["id"]
    assert by_reason[None]["problems"] is None and by_reason[None]["firstSent"]


@pytest.mark.usefixtures("aws_env")
def test_removing_the_malformed_ones_deletes_them_and_only_them(tmp_path):
    sqs, dlq = _dead_letters_of_two_kinds()
    code = block("remove-malformed")
    receive = next(p for p in code.replace("\\\n", " ").split("\n") if "receive-message" in p)
    selected = jmespath.search(option(receive, "query"), _receive_as(code, sqs, dlq))
    saved = tmp_path / "malformed.json"
    saved.write_text(json.dumps(selected))
    # The runbook's own one-liner turns the saved messages into receipt handles
    snippet = re.search(r"\.venv/bin/python -c '([^']+)'", code)
    assert snippet
    handles = subprocess.run(
        [sys.executable, "-c", snippet.group(1), str(saved)], text=True, capture_output=True, check=True
    ).stdout.split()
    assert len(handles) == 1
    for handle in handles:
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=handle)
    counts = sqs.get_queue_attributes(
        QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert int(counts["ApproximateNumberOfMessages"]) + int(counts["ApproximateNumberOfMessagesNotVisible"]) == 1
    # And with nothing malformed left, the saved file says so and the one-liner prints nothing
    saved.write_text("null")
    assert (
        subprocess.run(
            [sys.executable, "-c", snippet.group(1), str(saved)], text=True, capture_output=True, check=True
        ).stdout.strip()
        == ""
    )


# ---------- restoring a table ----------


@pytest.mark.parametrize("mode", ["missing", "all"])
def test_the_copy_back_puts_back_what_was_deleted_and_by_default_keeps_what_changed_since(aws_env, mode, capsys):
    from referrals import storage

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table = storage.ReferralItem.Meta.table_name
    for pk in ("REFEREE#a", "REFEREE#b"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "REFERRAL"}, "status": {"S": "PENDING"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "REFEREE#b"}, "sk": {"S": "ORDER#o-1"}, "n": {"N": "1"}})
    # Given the table restored (moto copies it as it is: the moment "before the damage")
    restored = f"{table}-restored"
    dynamodb.restore_table_to_point_in_time(SourceTableName=table, TargetTableName=restored)
    # And then an item deleted by mistake, and one the service changed since
    dynamodb.delete_item(TableName=table, Key={"pk": {"S": "REFEREE#a"}, "sk": {"S": "REFERRAL"}})
    dynamodb.put_item(
        TableName=table, Item={"pk": {"S": "REFEREE#b"}, "sk": {"S": "REFERRAL"}, "status": {"S": "EARNED"}}
    )
    # When the runbook's script copies back
    argv = sys.argv
    sys.argv = ["-", restored, table, mode]
    try:
        exec(compile(heredoc(block("copy-back")), "copy-back", "exec"), {"__name__": "__main__"})  # noqa: S102
    finally:
        sys.argv = argv
    # Then the deleted item is back, and the changed one is as the service left it (or, with `all`, as restored)
    items = {(i["pk"]["S"], i["sk"]["S"]): i for i in dynamodb.scan(TableName=table)["Items"]}
    assert set(items) == {("REFEREE#a", "REFERRAL"), ("REFEREE#b", "REFERRAL"), ("REFEREE#b", "ORDER#o-1")}
    assert items["REFEREE#a", "REFERRAL"]["status"]["S"] == "PENDING"
    assert items["REFEREE#b", "REFERRAL"]["status"]["S"] == ("EARNED" if mode == "missing" else "PENDING")
    assert capsys.readouterr().out.strip() == (
        "copied 1, kept 2 that the live table has" if mode == "missing" else "copied 3, kept 0 that the live table has"
    )


def test_the_restore_commands_name_the_restored_table_apart_from_the_source():
    code = block("restore")
    assert '--source-table-name "$TABLE" --target-table-name "$RESTORED"' in code.replace("\\\n  ", "")
    assert 'RESTORED="$TABLE-restored-' in code


# ---------- held referrals ----------


@pytest.mark.usefixtures("aws_env")
def test_the_held_referrals_scan_finds_a_held_one_with_its_reason():
    from referrals import storage
    from tests.integration.test_abuse import held_friend

    _, friend, _ = held_friend()
    code = block("held")
    answer = boto3.client("dynamodb", region_name=REGION).scan(
        TableName=storage.ReferralItem.Meta.table_name,
        FilterExpression=option(code, "filter-expression"),
        ExpressionAttributeNames=json.loads(option(code, "expression-attribute-names")),
        ExpressionAttributeValues=json.loads(option(code, "expression-attribute-values")),
        ProjectionExpression=option(code, "projection-expression"),
    )
    rows = jmespath.search(option(code, "query"), answer)
    assert [row[0] for row in rows] == [friend]
    assert rows[0][3] == "DISPOSABLE_EMAIL" and rows[0][4]


# ---------- site settings ----------


def _check_sites(path: Path) -> subprocess.CompletedProcess[str]:
    command = re.search(r"(\.venv/bin/python -c '.*?' )sites\.json", block("check-sites"), re.S)
    assert command
    return subprocess.run(
        [BASH, "-c", command.group(1) + shlex.quote(str(path))], cwd=ROOT, text=True, capture_output=True
    )


def test_the_settings_check_accepts_what_the_functions_accept_and_stops_where_they_stop(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"sites": {"default": {}, "outlet": {"domain": "o.example", "sender": "f@o.example"}}}))
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"sites": {"default": {"rewards": {"minimumOrdr": "30.00"}}}}))
    answer = _check_sites(good)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "['default', 'outlet']"
    refused = _check_sites(typo)
    assert refused.returncode != 0 and "unknown setting 'minimumOrdr'" in refused.stderr


def test_the_parameters_file_changes_sites_config_and_keeps_every_other_parameter(tmp_path, capsys):
    keys = list(template()["Parameters"])
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    sites = {"sites": {"default": {"enabled": False}}}
    (tmp_path / "sites.json").write_text(json.dumps(sites, indent=2))
    argv = sys.argv
    sys.argv = ["-", str(tmp_path / "keys.json"), str(tmp_path / "sites.json")]
    try:
        exec(compile(heredoc(block("change-set")), "change-set", "exec"), {"__name__": "__main__"})  # noqa: S102
    finally:
        sys.argv = argv
    parameters = json.loads(capsys.readouterr().out)
    assert [p["ParameterKey"] for p in parameters] == keys
    (changed,) = [p for p in parameters if "ParameterValue" in p]
    assert changed == {"ParameterKey": "SitesConfig", "ParameterValue": '{"sites":{"default":{"enabled":false}}}'}
    assert all(p == {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in parameters if p != changed)
    # CloudFormation's own model takes the file as the `--parameters` of create-change-set
    cfn = botocore.session.get_session().create_client(
        "cloudformation", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(cfn) as stub:
        stub.add_response("create_change_set", {"Id": "x", "StackId": "y"})
        cfn.create_change_set(
            StackName="referrals",
            ChangeSetName="sites-1",
            UsePreviousTemplate=True,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
