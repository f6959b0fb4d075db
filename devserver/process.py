"""Start `python -m devserver` (what `make dev` runs) in a process of its own and wait until it is healthy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devserver.stack import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    # `sam local invoke --env-vars`: each function's variables, pointing at this server's AWS endpoint
    env_vars_path: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.env_vars_path.unlink(missing_ok=True)  # the server writes it and never removes it


def start(extra_env: dict[str, str] | None = None, timeout_s: float = 60) -> RunningServer:
    port = free_port()
    env_vars = Path(tempfile.gettempdir()) / f"referrals-env-vars-{port}.json"
    env = {
        **os.environ,
        "PORT": str(port),
        "AWS_PORT": str(free_port()),  # not PORT + 1, which another server may hold
        "REFERRALS_AWS_HOST": "127.0.0.1",  # its functions run on this machine, not in a container
        "REFERRALS_ENV_VARS": str(env_vars),
        **(extra_env or {}),
    }
    log = tempfile.NamedTemporaryFile(prefix="referrals-local-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "devserver"], cwd=ROOT, env=env, stdout=log, stderr=log)
    server = RunningServer(process, f"http://127.0.0.1:{port}", Path(log.name), Path(env["REFERRALS_ENV_VARS"]))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local server exited: {server.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/_local/health", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the local server did not become healthy in {timeout_s} s")
