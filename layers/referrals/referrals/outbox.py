"""Reward events out, through a transactional outbox.

The event record is written in the same transaction as the state change it announces (`record` builds it),
published right after (`publish`), and deleted once EventBridge has accepted it. If the function dies in
between, or EventBridge refuses, the record stays on the due index and the reconciliation publishes it.
Each event carries a stable `idempotencyKey`: delivery is at least once, consumers dedupe on the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from referrals import clients, formats, storage
from referrals.config import load_event_settings
from referrals.errors import Busy, Refused
from referrals.storage.client import RETRYABLE, classify, error_code, refusal

SOURCE = "referrals"
PUT_EVENTS_LIMIT = 10  # entries per PutEvents request
GRACE = timedelta(minutes=5)


@cache
def _bus() -> str:
    return load_event_settings().bus_name


def record(referee_id: str, detail_type: str, key: str, detail: dict[str, Any], at: datetime) -> storage.OutboxItem:
    """The outbox record of one event; due for republishing `GRACE` after `at` unless published before."""
    return storage.OutboxItem(
        storage.referee_pk(referee_id),
        f"EVENT#{key}",
        detail_type=detail_type,
        detail=json.dumps({"idempotencyKey": key, **detail}, separators=(",", ":")),
        at=formats.iso(at),
        due_shard=storage.due_shard(referee_id),
        due_at=formats.iso(at + GRACE),
    )


@dataclass(frozen=True)
class Published:
    published: int = 0
    unpublished: int = 0
    error: str | None = None


def publish(items: Sequence[storage.OutboxItem]) -> Published:
    """PutEvents to the service's bus (10 to a request), then delete what was accepted. Never raises: what
    is not published stays in the outbox for the reconciliation (it runs after the state change committed, so
    failing the caller would undo nothing). A refused PutEvents (AccessDenied, no such bus) is no contention:
    it is logged as refused (storage.client.refusal), and `error` names its code."""
    if not items:
        return Published()
    bus = _bus()
    accepted: list[storage.OutboxItem] = []
    error: str | None = None
    for start in range(0, len(items), PUT_EVENTS_LIMIT):
        batch = items[start : start + PUT_EVENTS_LIMIT]
        entries = [
            {
                "Source": SOURCE,
                "DetailType": item.detail_type,
                "Detail": item.detail,
                "EventBusName": bus,
                "Time": datetime.fromisoformat(item.at),
            }
            for item in batch
        ]
        try:
            answer = clients.client("events").put_events(Entries=entries)
        except (BotoCoreError, ClientError) as failure:  # the network, throttling after botocore's retries
            error = error_code(failure)
            if classify(failure) != RETRYABLE:  # permissions, a missing bus: logged as refused, never as busy
                refusal(failure, "EventBridge", "PutEvents")
            continue
        for item, result in zip(batch, answer.get("Entries", []), strict=False):
            if result.get("EventId") and not result.get("ErrorCode"):
                accepted.append(item)
            else:
                error = result.get("ErrorCode") or "NotAccepted"
    if accepted:
        try:
            storage.delete_outbox(accepted)
        except (Busy, Refused) as failure:  # published but not forgotten: republished later, deduped by key
            error = failure.code if isinstance(failure, Refused) else "Busy"  # a refusal is logged already
    return Published(len(accepted), len(items) - len(accepted), error)
