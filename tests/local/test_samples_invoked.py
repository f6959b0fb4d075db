"""Every sample in events/ through its built function against `make dev`, as `sam local invoke` runs it, without
Docker (issue 13, part 3; docs/local.md, "Sample events", whose table says what each must answer).

Once per test session, whichever xdist worker gets here first: `sam build` into a temporary directory, for this
machine's platform (the template builds the layer for arm64); a `python -m devserver` of its own, since the
samples write (they erase Alice) and the other local tests share theirs; then the table's rows in order, each
sample given to its function's built handler in a process of its own (devserver/runtime.py: one per function,
which handles that function's samples in turn, as a Lambda environment is reused), with the variables from the
server's --env-vars file. The answers are kept in a file the other worker reads.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver import process
from devserver.stack import Stack
from tests.conftest import EVENTS, ROOT, LocalApi

pytestmark = pytest.mark.http

LOCAL_DOC = ROOT / "docs" / "local.md"
# The packages the Lambda Python runtime provides, which the layer leaves out (layers/referrals/requirements.txt)
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
ANY = "*"


def table() -> dict[str, tuple[str, Any]]:
    """docs/local.md's sample table, in its order: file -> (function or local route, expected answer)."""
    section = LOCAL_DOC.read_text().split("## Sample events\n", 1)[1]
    rows: dict[str, tuple[str, Any]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and re.fullmatch(r"`[\w.-]+\.json`", cells[0]):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), json.loads(cells[3].strip("`")))
    return rows


def contains(answer: Any, expected: Any) -> bool:
    """Whether `answer` has every key `expected` names, with the same value (lists item by item; "*": any value)."""
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(answer, dict) and all(k in answer and contains(answer[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(answer, list) and len(answer) == len(expected) and all(map(contains, answer, expected))
    return answer == expected


def test_the_matcher_tells_a_wrong_answer():
    assert contains({"data": {"a": 1, "b": [1, 2]}}, {"data": {"b": [1, 2]}})
    assert contains({"expires": 5}, {"expires": ANY})
    assert not contains({"data": {"a": 1}}, {"data": {"a": 2}})
    assert not contains({"data": {}}, {"data": {"a": ANY}})
    assert not contains({"b": [1, 2, 3]}, {"b": [1, 2]})


def test_the_table_and_events_are_in_step():
    rows = table()
    assert set(rows) == {path.name for path in EVENTS.glob("*.json")}
    functions = set(Stack().functions())
    for name, (function, _) in rows.items():
        assert function in functions or function == "POST /_local/events", f"{name}: {function} is no function"


# ---------- the story, once per session ----------


def _runtime_dir(root: Path) -> Path:
    """The runtime's boto3 and botocore, linked from this environment: nothing else of it is on the path."""
    runtime = root / "runtime"
    runtime.mkdir(exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is not installed"
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        link = runtime / source.name
        if not link.exists():
            link.symlink_to(source)
    return runtime


def _sam_build(build_dir: Path) -> None:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PLATFORM": "",  # packaging/Makefile: wheels for this machine, so the layer's pydantic_core imports here
    }
    sam = Path(sys.executable).parent / "sam"
    command = [str(sam), "build", "--no-cached", "--build-dir", str(build_dir)]
    built = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]


class BuiltFunction:
    """One execution environment of a built function: a process of devserver/runtime.py."""

    def __init__(self, logical_id: str, build_dir: Path, runtime: Path, env_vars: dict[str, str], log: Path) -> None:
        spec = Stack().functions()[logical_id]
        (layer,) = Stack().of_type("AWS::Serverless::LayerVersion")
        task_root = build_dir / logical_id
        handler = f"{spec.module}.{spec.handler}"
        env = {  # what the runtime sets, as `sam local invoke` does, and the function's variables from the file
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_SAM_LOCAL": "true",
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": handler,
            **env_vars,
        }
        paths = [task_root, build_dir / layer / "python", runtime]
        command = [sys.executable, "-I", "-S", str(ROOT / "devserver" / "runtime.py"), handler, "--name", logical_id]
        command += [arg for path in paths for arg in ("--path", str(path))]
        command += ["--memory", str(spec.memory_mb), "--timeout", str(spec.timeout_s)]
        self.log = log
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("a"), text=True
        )

    def invoke(self, event: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the function's process ended: {self.log.read_text()[-3000:]}"
        outcome = json.loads(line)
        return outcome.get("answer", outcome)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _run_story(root: Path) -> dict[str, Any]:
    build_dir = root / "build"
    _sam_build(build_dir)
    runtime = _runtime_dir(root)
    server = process.start({"REFERRALS_LOCAL_SCHEDULES": "off"})  # nothing runs but the samples
    environments: dict[str, BuiltFunction] = {}
    answers: dict[str, Any] = {}
    try:
        env_vars = json.loads(server.env_vars_path.read_text())
        for name, (function, _) in table().items():
            event = json.loads((EVENTS / name).read_text())
            if function == "POST /_local/events":
                answers[name] = LocalApi(server.base_url).request("POST", "/_local/events", event)[1]
                continue
            if function not in environments:
                log = root / f"{function}.log"
                environments[function] = BuiltFunction(function, build_dir, runtime, env_vars[function], log)
            answers[name] = environments[function].invoke(event)
    finally:
        for environment in environments.values():
            environment.stop()
        server.stop()
    return answers


@pytest.fixture(scope="session")
def invoked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Each sample's answer, by file name. Under xdist the workers share one run: the first builds and invokes
    under a lock, the other reads what it wrote."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    results = root / "samples-invoked.json"
    with (root / "samples-invoked.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not results.exists():
            work = root / "samples-invoked"
            work.mkdir(exist_ok=True)
            try:
                outcome: dict[str, Any] = {"answers": _run_story(work)}
            except Exception as error:  # said once to every test, not run again by the other worker
                outcome = {"failed": f"{type(error).__name__}: {error}"}
            results.write_text(json.dumps(outcome, default=str))
    outcome = json.loads(results.read_text())
    if "failed" in outcome:
        pytest.fail(outcome["failed"])
    yield outcome["answers"]


@pytest.mark.parametrize("sample", sorted(path.name for path in EVENTS.glob("*.json")))
def test_each_sample_does_what_the_table_says(invoked, sample):
    rows = table()
    assert sample in rows, f"events/{sample} has no row in docs/local.md's sample table"
    function, expected = rows[sample]
    answer = invoked[sample]
    assert contains(answer, expected), f"{sample} through {function}: {json.dumps(answer)[:2000]}"
