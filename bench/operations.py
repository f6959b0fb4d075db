"""The operations whose AWS requests and cost `make bench` reports, run on moto through their functions."""

from __future__ import annotations

import itertools
from typing import Any

from bench.costs import Operation, Recorder, measure
from devserver.samples import appsync_event

_ids = itertools.count()


def _new_customer() -> tuple[str, str]:
    n = next(_ids)
    return f"bench-{n}", f"bench{n}@example.com"


def operations(local: Any) -> list[Operation]:
    api = local.functions["ApiFunction"]

    def register(customer: tuple[str, str], code: str | None = None) -> dict[str, Any]:
        arguments = {"input": {"fullName": "Bench Shopper", **({"referralCode": code} if code else {})}}
        return api.invoke(appsync_event("register.json", *customer, arguments=arguments))

    def registered() -> tuple[str, str, str]:
        customer = _new_customer()
        return (*customer, register(customer)["data"]["customer"]["referralCode"])

    return [
        Operation(
            "customer query",
            "ApiFunction",
            1,
            registered,
            lambda s: api.invoke(appsync_event("customer-query.json", s[0], s[1])),
        ),
        Operation("register without a code", "ApiFunction", 1, _new_customer, register),
        Operation(
            "register with a code",
            "ApiFunction",
            2,
            lambda: (_new_customer(), registered()[2]),
            lambda s: register(s[0], s[1]),
        ),
    ]


def run() -> list[dict[str, Any]]:
    recorder = Recorder()
    recorder.install()
    from devserver.server import LocalReferrals

    local = LocalReferrals()
    memory = {name: fn.spec.memory_mb for name, fn in local.functions.items()}
    try:
        return measure(operations(local), memory, recorder)
    finally:
        local.stop()
