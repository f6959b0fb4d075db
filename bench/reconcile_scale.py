"""Reconciliation at scale: a run with 100 rewards due among 1,000, 10,000 and 100,000 referrals stored.

What is due is created through the real flow (registration, then a qualifying order); the rest is filler
written straight into ReferralsTable (settled referrals, not due). The run's AWS requests are counted and
its own compute time (the run's time less the time inside AWS calls) measured; both should stay flat as
the table grows, since the run reads only the Due index. Baseline: the run among 1,000.

moto backs up every table touched by a transaction with a deep copy, which would make each transaction's
time grow with the table; that is moto's cost, not DynamoDB's, so this bench skips the backup. No
transaction here is meant to fail, and the run is checked to earn every due reward.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from bench.costs import CallTimer, Recorder, hooks

DUE = 100
SIZES = (1_000, 10_000, 100_000)


def _skip_moto_transaction_backups() -> None:
    import moto.dynamodb.models as models

    class _NoDeepCopy:
        @staticmethod
        def deepcopy(value: Any) -> Any:
            return value

    models.copy = _NoDeepCopy  # type: ignore[attr-defined]


def _seed_filler(count: int) -> None:
    import boto3

    client = boto3.client("dynamodb")
    table = os.environ["REFERRALS_TABLE"]
    batch = []
    for n in range(count):
        batch.append(
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": f"REFEREE#filler-{n}"},
                        "sk": {"S": "REFERRAL"},
                        "refereeId": {"S": f"filler-{n}"},
                        "referrerId": {"S": f"filler-referrer-{n % 997}"},
                        "site": {"S": "default"},
                        "code": {"S": "FILLER22"},
                        "status": {"S": "EARNED"},
                        "eligible": {"BOOL": True},
                        "friendName": {"S": "Filler F."},
                        "createdAt": {"S": "2026-01-01T00:00:00.000+00:00"},
                        "version": {"N": "3"},
                    }
                }
            }
        )
        if len(batch) == 25:
            client.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={table: batch})


def _one(size: int, recorder: Recorder, timer: CallTimer) -> dict[str, Any]:
    from bench.operations import QUALIFYING, _new_customer, _order
    from devserver.samples import appsync_event
    from devserver.server import LocalReferrals

    os.environ["REFERRALS_LOCAL_SCHEDULES"] = "off"
    local = LocalReferrals()
    try:
        api = local.functions["ApiFunction"]
        for _ in range(DUE):
            referrer = _new_customer()
            created = api.invoke(appsync_event("register.json", *referrer, arguments={"input": {"fullName": "R"}}))
            code = created["data"]["customer"]["referralCode"]
            friend = _new_customer()
            arguments = {"input": {"fullName": "F", "referralCode": code}}
            api.invoke(appsync_event("register.json", *friend, arguments=arguments))
            _order(local, "OrderPlaced", friend[0], f"o-{friend[0]}", "2026-12-01T10:00:00Z", total=QUALIFYING)
        _seed_filler(size - DUE)
        # The stored items live in moto, in this process; in Lambda they would not be on the function's heap.
        # Freeze them so the garbage collector's walks over moto's memory do not count as the run's time.
        gc.collect()
        gc.freeze()
        recorder.calls.clear()
        timer.inside = 0.0
        started = time.perf_counter()
        answer = local.functions["ReconcileFunction"].invoke({"time": "2026-12-20T10:00:00Z"})
        elapsed = time.perf_counter() - started
        assert answer.get("earned") == DUE, f"the run did not earn every due reward: {answer}"
        return {"requests": len(recorder.calls), "compute_s": elapsed - timer.inside, "total_s": elapsed}
    finally:
        gc.unfreeze()
        local.stop()


def run() -> list[dict[str, Any]]:
    recorder, timer = hooks()
    _skip_moto_transaction_backups()
    results = {size: _one(size, recorder, timer) for size in SIZES}
    base = results[SIZES[0]]
    rows = []
    for size, measured in results.items():
        rows.append(
            {
                "figure": f"reconciliation, {DUE} due among {size:,}: requests",
                "value": measured["requests"],
                "unit": "requests",
                "baseline": base["requests"],
                "baseline_name": f"among {SIZES[0]:,}",
                "ratio": round(measured["requests"] / base["requests"], 2),
            }
        )
        rows.append(
            {
                "figure": f"reconciliation, {DUE} due among {size:,}: own compute",
                "unit": "ms",
                "value": round(measured["compute_s"] * 1000, 1),
                "baseline": round(base["compute_s"] * 1000, 1),
                "baseline_name": f"among {SIZES[0]:,}",
                "ratio": round(measured["compute_s"] / base["compute_s"], 2),
            }
        )
    return rows
