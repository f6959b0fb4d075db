"""What `sam build` ships must import in Lambda: each handler with only its layer and the runtime's boto3.

The layer and functions are built with packaging/Makefile (the recipe sam build runs) for this machine's
platform, then each handler is imported in a fresh interpreter without site-packages: only the function,
its layer and a folder holding what the Lambda runtime provides (boto3, botocore and their dependencies).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.coldstart import build
from devserver.stack import Stack

LAZY = ("email_validator", "dns", "idna", "better_profanity")
RUNTIME_PROVIDES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")


def _runtime(tmp_path: Path) -> Path:
    folder = tmp_path / "runtime"
    folder.mkdir()
    for name in RUNTIME_PROVIDES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return folder


@pytest.mark.skipif(os.environ.get("REFERRALS_SKIP_PACKAGING") == "1", reason="asked to skip")
def test_every_function_imports_as_shipped(tmp_path):
    stack = Stack()
    built = build(stack, tmp_path / "build")
    layers = [tmp_path / "build" / name / "python" for name in stack.of_type("AWS::Serverless::LayerVersion")]
    runtime = _runtime(tmp_path)
    assert built, "no function was built"
    for name, task_root in built.items():
        assert list(task_root.glob("__pycache__/*.cpython-313.pyc")), f"{name} ships no bytecode"
        env = {
            **stack.functions()[name].environment,
            "PYTHONPATH": os.pathsep.join(str(p) for p in [task_root, *layers, runtime]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_LAMBDA_FUNCTION_NAME": name,
        }
        handler = stack.functions()[name].handler
        # Nothing on a cold start imports what only a registration or an invite needs (referrals.emails, codes)
        check = f"import app, sys; assert callable(app.{handler}); assert not {set(LAZY)!r} & set(sys.modules)"
        done = subprocess.run(
            [sys.executable, "-S", "-c", check],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, f"{name} does not import as shipped:\n{done.stderr[-2000:]}"
    # ...and what they need is shipped: address syntax (email-validator, idna) and the offensive words' list
    probe = (
        "from referrals import codes, emails; "
        "assert emails.invalid_reason('fran@bücher.example') is None; "
        "assert emails.invalid_reason('fran..x@example.com') == 'INVALID_FORMAT'; "
        "assert codes.chosen_code_problem('B00BS') == codes.CodeProblem.OFFENSIVE"
    )
    env = {"PYTHONPATH": os.pathsep.join(str(p) for p in [*layers, runtime]), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, f"the layer lacks what registration needs:\n{done.stderr[-2000:]}"
    for layer in layers:
        assert not (layer / "botocore").exists(), "the layer must not shadow the runtime's botocore"
        assert not (layer / "boto3").exists(), "the layer must not shadow the runtime's boto3"
