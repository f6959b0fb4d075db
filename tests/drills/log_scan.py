"""What a log scan reads: every line the flows wrote, with the extras and tracebacks Powertools would print.

Powertools binds its handler to sys.stdout as it is when the first Logger of the service is made. Made under a
test's capsys, it would write to a closed stream in every later test (and print the failing record's
exception, message and all, to stderr); made under another test's capture, capsys never sees it. So the scan
reads the log records themselves (caplog), formatted in full, and the Logger is made before capsys starts.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest


@pytest.fixture
def powertools_logging() -> None:
    """Request it before capsys: the service's Logger is then bound to a stream that outlives the test."""
    from aws_lambda_powertools import Logger

    Logger()


def log_text(captured: Any, caplog: pytest.LogCaptureFixture) -> str:
    """stdout and stderr (metrics, prints) and every log record with all its fields and its traceback."""
    formatter = logging.Formatter()
    lines = [captured.out, captured.err, caplog.text]
    for record in caplog.records:
        lines.append(json.dumps(record.__dict__, default=str))
        if record.exc_info:
            lines.append(formatter.formatException(record.exc_info))
    return "\n".join(lines)
