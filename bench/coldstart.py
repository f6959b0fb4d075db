"""Cold start: the time to import each function's handler module as `sam build` ships it, on a Lambda-like
runtime, against a bare `import boto3` on the same runtime (medians of alternating runs).

The Lambda-like runtime is a Python 3.13 virtual environment with boto3 installed (bytecode present, as the
managed runtime has it). Each function is built with the very recipe `sam build` runs (packaging/Makefile),
for this machine's platform instead of arm64 so its compiled wheels load here. The handler's directory and
the layer come first on the path, as /var/task and /opt/python do in Lambda; PYTHONDONTWRITEBYTECODE keeps
every run as cold as the first.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from devserver.stack import ROOT, Stack

WORK = ROOT / ".aws-sam" / "bench"
RUNTIME = WORK / "runtime"
# Address validation (referrals.emails) is imported by the first call that needs it, not by any cold start.
LAZY = "email_validator"
PROBE = "import sys, time; t = time.perf_counter(); __import__(sys.argv[1]); print(time.perf_counter() - t)"
# The import, then what a function makes on its first request instead of at import (the HTTP door's Lambda client)
PROBE_FIRST_USE = (
    "import sys, time; t = time.perf_counter(); m = __import__(sys.argv[1]); getattr(m, sys.argv[2])(); "
    "print(time.perf_counter() - t)"
)
MADE_ON_FIRST_USE = {"HttpApiFunction": "lambda_client", "ApiFunction": "_http_engine"}


def _boto3_pin() -> str:
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        if line.lower().startswith("boto3=="):
            return line.strip()
    return "boto3"


def _python313() -> str:
    found = shutil.which("python3.13")
    if not found:
        raise SystemExit("python3.13 is needed for the cold-start bench")
    return found


def prepare_runtime() -> Path:
    python = RUNTIME / "bin" / "python"
    if not python.exists():
        subprocess.run([_python313(), "-m", "venv", str(RUNTIME)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", _boto3_pin()], check=True
        )
    return python


def build(stack: Stack, out: Path = WORK / "build") -> dict[str, Path]:
    """Build the layer and every function with packaging/Makefile for this machine's platform."""
    shutil.rmtree(out, ignore_errors=True)
    makefile = ROOT / "packaging" / "Makefile"
    env = {**os.environ, "PLATFORM": "", "PYTHON": sys.executable}
    for layer in stack.of_type("AWS::Serverless::LayerVersion"):
        target = out / layer
        target.mkdir(parents=True)
        subprocess.run(
            ["make", "-s", "-f", str(makefile), f"build-{layer}", f"ARTIFACTS_DIR={target}"], check=True, env=env
        )
    built = {}
    for name, spec in stack.functions().items():
        target = out / name
        target.mkdir(parents=True)
        subprocess.run(
            ["make", "-s", "-f", str(makefile), f"build-{name}", f"ARTIFACTS_DIR={target}"],
            check=True,
            env=env,
            cwd=spec.code_dir,
        )
        built[name] = target
    return built


def _lambda_env(stack: Stack, name: str, task_root: Path) -> dict[str, str]:
    spec = stack.functions()[name]
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        **spec.environment,
    }


def _time(python: Path, module: str, path: list[Path], env: dict[str, str], first_use: str | None = None) -> float:
    env = {**env, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    probe = [PROBE, module] if first_use is None else [PROBE_FIRST_USE, module, first_use]
    done = subprocess.run([str(python), "-c", *probe], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def run(rounds: int = 15) -> list[dict[str, Any]]:
    stack = Stack()
    python = prepare_runtime()
    built = build(stack)
    layers = [WORK / "build" / layer / "python" for layer in stack.of_type("AWS::Serverless::LayerVersion")]
    baseline_env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    first_use = {f"{name}+{made}": (name, made) for name, made in MADE_ON_FIRST_USE.items() if name in built}
    samples: dict[str, list[float]] = {"boto3": [], **{name: [] for name in [*built, *first_use]}, LAZY: []}
    for _ in range(rounds):  # alternate so that drift in the machine's load hits every figure alike
        samples["boto3"].append(_time(python, "boto3", [], baseline_env))
        samples[LAZY].append(_time(python, LAZY, layers, baseline_env))
        for name, task_root in built.items():
            samples[name].append(_time(python, "app", [task_root, *layers], _lambda_env(stack, name, task_root)))
        for label, (name, made) in first_use.items():
            env = _lambda_env(stack, name, built[name])
            samples[label].append(_time(python, "app", [built[name], *layers], env, made))
    baseline = statistics.median(samples["boto3"])

    def row(figure: str, sample: str, request_path: bool) -> dict[str, Any]:
        median = statistics.median(samples[sample])
        return {
            "figure": figure,
            "value": round(median * 1000, 1),
            "unit": "ms",
            "baseline": round(baseline * 1000, 1),
            "baseline_name": "import boto3",
            "ratio": round(median / baseline, 2),
            "request_path": request_path,
        }

    rows = []
    for name in [*built, *first_use]:
        shown = name if name in built else f"{first_use[name][0]}, then its {first_use[name][1]}()"
        rows.append(row(f"cold start: import {shown}", name, name.split("+")[0] in _request_path(stack)))
    # Not at cold start: referrals.emails imports it on first use
    rows.append(row(f"first registration or invite of an environment: import {LAZY}", LAZY, False))
    return rows


def _request_path(stack: Stack) -> set[str]:
    """The functions a request waits for: the resolvers' and the HTTP API door's."""
    return set(stack.resolvers().values()) | {name for name, _ in stack.http_routes().values()}
