"""The README's "Try it" block, pasted into bash, ends by printing Alice's referralCount of 1 (issue 13, part 4).

The block is taken from README.md as it is and run in a fresh bash, on a free port; it starts `make dev` itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from devserver.server import port_in_use

ROOT = Path(__file__).resolve().parents[2]


def _try_it_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    return block


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_try_it_block_pasted_into_bash_ends_with_a_referral_count_of_1(tmp_path):
    ports = {"PORT": str(_free_port()), "AWS_PORT": str(_free_port())}  # AWS_PORT: not PORT + 1, which may be taken
    env = {**os.environ, **ports, "REFERRALS_LOCAL_SCHEDULES": "off"}
    process = subprocess.Popen(
        [shutil.which("bash") or "/bin/bash", "-c", _try_it_block()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the block leaves `make dev` running: its whole group is stopped below
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
    assert re.search(r"Alice's code: [A-Z0-9]{8}\n", output), output
    assert '"newCustomer": true' in output.replace('"newCustomer":true', '"newCustomer": true'), output
    last = output.strip().splitlines()[-1]
    assert re.search(r'"referralCount": ?1\b', last), output


def test_a_port_in_use_is_one_line_with_the_fix():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        said = port_in_use(port)
    assert said is not None and f"PORT={port + 2} make dev" in said and "\n" not in said
    assert port_in_use(_free_port()) is None
