"""resolvers/invoke.js, the deployed AppSync resolver, run under Node with a stand-in for @aws-appsync/utils."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

UTILS = """
export class AppSyncError extends Error {
  constructor(message, type, data, info) { super(message); this.type = type; this.data = data; this.info = info; }
}
export const util = { error(message, type, data, info) { throw new AppSyncError(message, type, data, info); } };
"""

DRIVER = """
import { request, response } from './invoke.mjs';
const cases = JSON.parse(process.argv[2]);
const out = cases.map((ctx) => {
  try { return { request: request(ctx), result: response(ctx) }; }
  catch (e) { return { error: { message: e.message, type: e.type, info: e.info ?? null } }; }
});
console.log(JSON.stringify(out));
"""


def run(cases: list[dict], tmp_path: Path) -> list[dict]:
    utils = tmp_path / "node_modules" / "@aws-appsync" / "utils"
    utils.mkdir(parents=True)
    (utils / "package.json").write_text(
        json.dumps({"name": "@aws-appsync/utils", "type": "module", "main": "index.js"})
    )
    (utils / "index.js").write_text(UTILS)
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}))
    shutil.copy(ROOT / "resolvers" / "invoke.js", tmp_path / "invoke.mjs")
    (tmp_path / "driver.mjs").write_text(DRIVER)
    done = subprocess.run(
        [NODE, "driver.mjs", json.dumps(cases)], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(done.stdout)


def test_request_passes_the_whole_context_and_response_unwraps(tmp_path):
    ctx = {
        "arguments": {"a": 1},
        "identity": {"sub": "s"},
        "source": None,
        "request": {"headers": {}},
        "info": {"fieldName": "customer"},
        "prev": None,
        "stash": {},
        "result": {"data": {"referralCode": "ABCD2345"}},
    }
    (answer,) = run([ctx], tmp_path)
    assert answer["request"]["operation"] == "Invoke"
    assert answer["request"]["payload"]["identity"] == {"sub": "s"}
    assert answer["request"]["payload"]["arguments"] == {"a": 1}
    assert answer["result"] == {"referralCode": "ABCD2345"}


def test_typed_error_becomes_util_error_with_error_info(tmp_path):
    info = {"rateLimited": True, "rateLimitingBucket": "REFERRAL_EMAIL", "retryAfterSeconds": 60}
    ctx = {
        "arguments": {},
        "result": {"error": {"message": "Rate limited: Please try again later", "type": "RateLimited", "info": info}},
    }
    (answer,) = run([ctx], tmp_path)
    assert answer["error"] == {"message": "Rate limited: Please try again later", "type": "RateLimited", "info": info}


def test_lambda_failure_hides_its_details(tmp_path):
    (answer,) = run(
        [{"arguments": {}, "error": {"message": "Traceback ... table X", "type": "Lambda:Unhandled"}}], tmp_path
    )
    assert answer["error"]["message"] == "An internal error occurred"
    assert answer["error"]["type"] == "InternalFailure"
