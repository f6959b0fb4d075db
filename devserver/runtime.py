"""A built function's handler run as the Lambda runtime runs it, without the container `sam local invoke` needs.

Run as a script in a fresh interpreter that sees nothing of this project: `python -I -S devserver/runtime.py ...`
(-I: no PYTHON* variables, no script directory on the path; -S: no site-packages). The path is what Lambda's
is: the function's build directory (.aws-sam/build/<LogicalId>), the layer's python directory, and the
runtime's own packages (boto3 and botocore, which the layer leaves to the runtime: layers/referrals/requirements.txt).
The environment is the caller's: the function's variables from the --env-vars file
(tests/local/test_samples_invoked.py).

One process is one execution environment: the handler is imported once (the cold start) and then invoked once
per line of stdin, each line an event in JSON. Each answer is one line on stdout: {"answer": ...}, or
{"errorType": ..., "errorMessage": ...} when the handler raised, as Lambda reports it. What the function logs
goes to stderr, so it never mixes with the answers.

Only the standard library here: this file runs before anything else is on the path.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import uuid
from typing import Any


class LambdaContext:
    """The attributes of the runtime's context object that the functions and Powertools read."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'eu-west-1')}:123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "$LATEST"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("handler", help="module.function, as the template's Handler says (app.lambda_handler)")
    parser.add_argument("--path", action="append", required=True, help="a directory on the function's sys.path")
    parser.add_argument("--name", required=True, help="the function's logical id")
    parser.add_argument("--memory", type=int, default=512)
    parser.add_argument("--timeout", type=int, default=10)
    args = parser.parse_args()
    # Answers go to the original stdout; everything printed (the function's logs) goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.path[:0] = args.path
    module_name, function_name = args.handler.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    for line in sys.stdin:
        if not line.strip():
            continue
        context = LambdaContext(args.name, args.memory, args.timeout)
        outcome: dict[str, Any]
        try:
            outcome = {"answer": handler(json.loads(line), context)}
        except Exception as error:  # reported as Lambda reports a handler's error: its type and message
            outcome = {"errorType": type(error).__name__, "errorMessage": str(error)}
        sys.stdout.flush()
        answers.write(json.dumps(outcome, default=str) + "\n")


if __name__ == "__main__":
    main()
