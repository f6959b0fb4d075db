"""resolvers/invoke.js keeps a field's value and appends the errors that travel beside it (util.appendError)."""

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
export const appended = [];
export const util = {
  error(message, type, data, info) { throw Object.assign(new Error(message), { type, info }); },
  appendError(message, type, data, info) { appended.push({ message, type, info }); },
};
"""
DRIVER = """
import { response } from './invoke.mjs';
import { appended } from '@aws-appsync/utils';
const result = response(JSON.parse(process.argv[2]));
console.log(JSON.stringify({ result, appended }));
"""


def test_warnings_are_appended_and_the_value_kept(tmp_path):
    utils = tmp_path / "node_modules" / "@aws-appsync" / "utils"
    utils.mkdir(parents=True)
    (utils / "package.json").write_text(json.dumps({"name": "@aws-appsync/utils", "type": "module", "main": "i.js"}))
    (utils / "i.js").write_text(UTILS)
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}))
    shutil.copy(ROOT / "resolvers" / "invoke.js", tmp_path / "invoke.mjs")
    (tmp_path / "driver.mjs").write_text(DRIVER)
    info = {"notSent": [{"address": "a@example.org", "reason": "RECENTLY_INVITED"}]}
    warning = {"type": "InvitationsNotSent", "message": "Some invitations were not sent", "info": info}
    ctx = {"arguments": {}, "result": {"data": True, "warnings": [warning]}}
    done = subprocess.run(
        [NODE, "driver.mjs", json.dumps(ctx)], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(done.stdout) == {"result": True, "appended": [warning]}
