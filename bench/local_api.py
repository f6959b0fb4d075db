"""The local API under load: the `customer` query against `make dev`'s server with 8 concurrent clients.

Baseline, in the same run and with the same clients: `GET /_local/health`, the bare HTTP server. The share
of time in the stand-in itself is what the server spends outside the function handler (HTTP, token check,
graphql-core validation and execution), from the `Server-Timing` header it sends.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devserver import process, tokens

CLIENTS = 8
QUERY = "query { customer { referralCode referralCount referralLink } }"


def _timed(request: urllib.request.Request) -> tuple[float, float, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
        timing = answer.headers.get("Server-Timing") or ""
    elapsed = time.perf_counter() - started
    parts = dict(p.strip().split(";dur=") for p in timing.split(",") if ";dur=" in p)
    return elapsed, float(parts.get("function", 0)) / 1000, float(parts.get("total", 0)) / 1000


def _load(make_request: Any, count: int) -> dict[str, float]:
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda _: _timed(make_request()), range(count)))
        wall = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    function_time = sum(r[1] for r in results)
    server_time = sum(r[2] for r in results)
    return {
        "rps": count / wall,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "stand_in_share": 1 - function_time / server_time if server_time else 0.0,
    }


def run(requests: int = 800) -> list[dict[str, Any]]:
    server = process.start({"POWERTOOLS_LOG_LEVEL": "WARNING"})
    try:
        token = tokens.mint("bench-customer", "bench@example.com")
        graphql = server.base_url + "/graphql"

        def customer_request() -> urllib.request.Request:
            body = json.dumps({"query": QUERY}).encode()
            return urllib.request.Request(graphql, data=body, headers={"Authorization": token})

        register = json.dumps({"query": 'mutation { register(input: {fullName: "Bench"}) { newCustomer } }'}).encode()
        urllib.request.urlopen(urllib.request.Request(graphql, data=register, headers={"Authorization": token})).read()
        health = _load(lambda: urllib.request.Request(server.base_url + "/_local/health"), requests)
        customer = _load(customer_request, requests)
    finally:
        server.stop()

    def against_health(name: str, key: str, unit: str, scale: float, digits: int | None) -> dict[str, Any]:
        return {
            "figure": f"local API: customer, {name}",
            "value": round(customer[key] * scale, digits),
            "unit": unit,
            "baseline": round(health[key] * scale, digits),
            "baseline_name": "GET /_local/health",
            "ratio": round(customer[key] / health[key], 2),
        }

    return [
        against_health("requests/s (8 clients)", "rps", "req/s", 1, None),
        against_health("p50 latency", "p50", "ms", 1000, 2),
        against_health("p99 latency", "p99", "ms", 1000, 2),
        {
            "figure": "local API: share of server time in the stand-in",
            "value": round(customer["stand_in_share"] * 100, 1),
            "unit": "%",
            "baseline": 100,
            "baseline_name": "whole server time",
            "ratio": round(customer["stand_in_share"], 2),
        },
    ]
