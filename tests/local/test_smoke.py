"""The smoke test (tests/smoke.py, docs/deploy.md) against the local server: locally with --local, and as it runs
against a deployed stack (--url, --api-key, two ID tokens), since the local /graphql takes the same headers."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from devserver import tokens
from devserver.stack import ROOT
from tests import smoke
from tests.conftest import new_id

pytestmark = pytest.mark.http

API_KEY = os.environ.get("REFERRALS_LOCAL_API_KEY", "local-api-key")
STEPS = 8


def run(*argv: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = smoke.main(list(argv), out=out)
    return status, out.getvalue().splitlines()


def steps(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("PASS ", "FAIL "))]


def test_local_story_passes_and_can_run_again(local_api):
    for _ in range(2):  # fresh ids each run, so it runs again against the same server
        status, lines = run("--local", local_api.base)
        assert status == smoke.PASSED, lines
        assert len(steps(lines)) == STEPS and all(line.startswith("PASS ") for line in steps(lines)), lines
        assert lines[-1] == f"smoke test passed: {STEPS} steps"


def test_as_against_a_deployed_stack_with_no_secret_printed(local_api):
    a, b = new_id("smoke-a"), new_id("smoke-b")
    token_a, token_b = tokens.mint(a, f"{a}@example.com"), tokens.mint(b, f"{b}@example.com")
    argv = ("--url", f"{local_api.base}/graphql", "--api-key", API_KEY, "--token-a", token_a, "--token-b", token_b)
    status, lines = run(*argv)
    assert status == smoke.PASSED, lines
    assert all(line.startswith("PASS ") for line in steps(lines)) and len(steps(lines)) == STEPS
    text = "\n".join(lines)
    assert token_a not in text and token_b not in text and API_KEY not in text

    # The same two users again: they have registered, so the run stops before writing anything, and says why.
    status, lines = run(*argv)
    assert status == smoke.NOT_STARTED, lines
    assert steps(lines) == [lines[1]] and lines[1].startswith("FAIL 1. ")
    assert "user A has registered already" in lines[1] and "two users who have never registered" in lines[1]
    assert "Traceback" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"token_use": "access"}, "token A is an access token"),
        ({"exp": 1}, "token A expired"),
        ({"sub": "same"}, "the same user"),
        ({"email": "Shopper+b@example.com"}, "share one mailbox"),
    ],
)
def test_tokens_that_cannot_tell_the_story_are_refused_before_any_request(change, said):
    def claims(who: str) -> dict:
        return {
            "sub": "same" if who == "b" and "sub" in change else new_id(who),
            "email": f"shopper+{who}@example.com",
            "token_use": "id",
            "exp": 4102444800,
        }

    token_a = tokens.sign({**claims("a"), **change})
    token_b = tokens.sign(claims("b"))
    # No server: the port is closed, so any request would fail differently.
    status, lines = run(
        "--url", "http://127.0.0.1:9/graphql", "--api-key", "k3y", "--token-a", token_a, "--token-b", token_b
    )
    assert status == smoke.NOT_STARTED and said in lines[-1], lines
    assert token_a not in "\n".join(lines)


def test_a_wrong_api_key_fails_its_step(local_api):
    a, b = new_id("smoke-a"), new_id("smoke-b")
    status, lines = run(
        "--url",
        f"{local_api.base}/graphql",
        "--api-key",
        "not-the-key",
        "--token-a",
        tokens.mint(a, f"{a}@example.com"),
        "--token-b",
        tokens.mint(b, f"{b}@example.com"),
    )
    assert status == smoke.FAILED
    assert steps(lines)[-1].startswith("FAIL 4. the public lookup") and "PublicApiKeyValue" in steps(lines)[-1]
    assert "not-the-key" not in "\n".join(lines)


def test_runs_as_a_module_with_the_standard_library_only(local_api):
    """`python -m tests.smoke`, without the site module: no site-packages, the standard library only."""
    answer = subprocess.run(
        [sys.executable, "-S", "-m", "tests.smoke", "--local", local_api.base],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.count("\nPASS ") == STEPS
