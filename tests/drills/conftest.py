"""Drills break things on purpose; botocore's retry waits are skipped (not its retries) to keep them fast."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr("referrals.storage._backoff", lambda attempt: None)
