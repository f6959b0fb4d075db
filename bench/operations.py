"""The operations whose AWS requests and cost `make bench` reports, run on moto through their functions."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

from bench.costs import Operation, hooks, measure
from devserver.samples import appsync_event, load_event

QUALIFYING = {"amount": "45.00", "currency": "GBP"}

_ids = itertools.count()


def _new_customer() -> tuple[str, str]:
    n = next(_ids)
    return f"bench-{n}", f"bench{n}@example.com"


BENCH_SETTINGS = {
    "sites": {
        "default": {
            "invites": {
                "maxAddressesPerCall": 50,
                "bucketCapacity": 1000,
                "refillPerDay": 1000,
                "siteSendsPerSecond": 1000,
            }
        }
    }
}
DUE_PER_RUN = 20


def _order(local: Any, detail_type: str, customer_id: str, order_id: str, at: str, **detail: Any) -> dict[str, Any]:
    event = load_event(
        {
            "OrderPlaced": "order-placed.json",
            "OrderCancelled": "order-cancelled.json",
            "OrderRefunded": "order-refunded.json",
        }[detail_type]
    )
    event.update({"id": f"bench-{next(_ids)}", "time": at})
    event["detail"] = {"orderId": order_id, "customerId": customer_id, **detail}
    return local.functions["OrderEventsFunction"].invoke(event)


def http_event(customer_id: str, email: str, query: str) -> dict[str, Any]:
    """A payload-format-2.0 event of the HTTP door's customer route, as API Gateway sends it past the JWT check."""
    claims = {"sub": customer_id, "email": email, "token_use": "id", "custom:site": "default"}
    return {
        "version": "2.0",
        "routeKey": "POST /graphql",
        "rawPath": "/graphql",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "routeKey": "POST /graphql",
            "requestId": f"bench-{next(_ids)}",
            "http": {"method": "POST", "path": "/graphql", "sourceIp": "203.0.113.10"},
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
        },
        "body": json.dumps({"query": query}),
        "isBase64Encoded": False,
    }


CUSTOMER_QUERY = "query { customer { referralCode referralCount referralLink } }"


def operations(local: Any) -> list[Operation]:

    api = local.functions["ApiFunction"]
    reconcile = local.functions["ReconcileFunction"]

    def register(customer: tuple[str, str], code: str | None = None) -> dict[str, Any]:
        arguments = {"input": {"fullName": "Bench Shopper", **({"referralCode": code} if code else {})}}
        return api.invoke(appsync_event("register.json", *customer, arguments=arguments))

    def registered() -> tuple[str, str, str]:
        customer = _new_customer()
        return (*customer, register(customer)["data"]["customer"]["referralCode"])

    def invite(state: tuple[str, str, list[str]]) -> Any:
        arguments = {"emailAddresses": state[2]}
        return api.invoke(appsync_event("send-referral-email.json", state[0], state[1], arguments=arguments))

    def inviter(friends: int) -> Callable[[], tuple[str, str, list[str]]]:
        def prepare() -> tuple[str, str, list[str]]:
            customer = registered()
            return customer[0], customer[1], [f"friend{next(_ids)}@example.org" for _ in range(friends)]

        return prepare

    def friend() -> tuple[str, str]:
        code = registered()[2]
        me = _new_customer()
        register(me, code)
        return me

    def friend_with_order() -> tuple[str, str]:
        me = friend()
        _order(local, "OrderPlaced", me[0], f"o-{me[0]}", "2026-12-01T10:00:00Z", total=QUALIFYING)
        return me

    def due_backlog() -> None:
        for _ in range(DUE_PER_RUN):
            friend_with_order()

    placed = lambda s: _order(local, "OrderPlaced", s[0], f"o-{s[0]}", "2026-12-01T10:00:00Z", total=QUALIFYING)  # noqa: E731
    return [
        Operation(
            "reconciliation, per due reward",
            "ReconcileFunction",
            1,
            due_backlog,
            lambda _: reconcile.invoke({"time": "2026-12-20T10:00:00Z"}),
            via_appsync=False,
            per=DUE_PER_RUN,
        ),
        *[Operation(f"invite {n} friends", "ApiFunction", 4 + n, inviter(n), invite) for n in (1, 10, 50)],
        Operation("order placed, qualifying", "OrderEventsFunction", 4, friend, placed, via_appsync=False),
        Operation(
            "order placed, customer not referred", "OrderEventsFunction", 1, _new_customer, placed, via_appsync=False
        ),
        Operation(
            "order cancelled, pending reward",
            "OrderEventsFunction",
            4,
            friend_with_order,
            lambda s: _order(local, "OrderCancelled", s[0], f"o-{s[0]}", "2026-12-02T10:00:00Z"),
            via_appsync=False,
        ),
        Operation(
            "order refunded, still standing",
            "OrderEventsFunction",
            2,
            friend_with_order,
            lambda s: _order(
                local,
                "OrderRefunded",
                s[0],
                f"o-{s[0]}",
                "2026-12-02T10:00:00Z",
                refund={"amount": "5.00", "currency": "GBP"},
            ),
            via_appsync=False,
        ),
        Operation(
            "customer query",
            "ApiFunction",
            1,
            registered,
            lambda s: api.invoke(appsync_event("customer-query.json", s[0], s[1])),
        ),
        Operation(
            "customer query, HTTP door",
            "ApiFunction",  # API Gateway invokes it directly: the same resolvers, in-process (docs/api.md)
            1,
            registered,
            lambda s: api.invoke(http_event(s[0], s[1], CUSTOMER_QUERY)),
            via_appsync=False,
            via_http=True,
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
    recorder, _ = hooks()
    from devserver.server import LocalReferrals

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config:
        json.dump(BENCH_SETTINGS, config)
    os.environ["REFERRALS_LOCAL_SCHEDULES"] = "off"
    local = LocalReferrals(config.name)
    memory = {name: fn.spec.memory_mb for name, fn in local.functions.items()}
    try:
        return measure(operations(local), memory, recorder)
    finally:
        local.stop()
