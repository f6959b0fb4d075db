"""The local API under load: the `customer` query against `make dev`'s server with 8 concurrent clients.

Baseline, in the same run and with the same clients: `GET /_local/health`, the bare HTTP server. The share
of time in the stand-in itself is what the server spends outside the function handler (HTTP, token check,
graphql-core validation and execution), from the `Server-Timing` header it sends.

And a burst: 64 clients connecting at the same moment, each asking `GET /_local/health` once; every one must be
answered, none refused, reset or left waiting for the kernel to accept it (the listen backlog).
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devserver import process, tokens

CLIENTS = 8
BURST = 64
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


def _burst(base_url: str, clients: int = BURST) -> dict[str, int]:
    """`clients` connections opened at once: how many were answered, failed (refused, reset, timed out) or
    waited a second or more to be accepted (a SYN the kernel dropped for want of backlog, then resent)."""
    host, port = base_url.removeprefix("http://").split(":")
    barrier = threading.Barrier(clients)
    outcomes: list[tuple[bool, float]] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait(timeout=30)
        started = time.perf_counter()
        try:
            with socket.create_connection((host, int(port)), timeout=20) as connection:
                accepted = time.perf_counter() - started
                connection.sendall(b"GET /_local/health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := connection.recv(65536):
                    reply += chunk
            answered = reply.startswith(b"HTTP/1.0 200")
        except OSError:
            answered, accepted = False, time.perf_counter() - started
        with lock:
            outcomes.append((answered, accepted))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    answered = sum(1 for ok, _ in outcomes if ok)
    return {
        "answered": answered,
        "failed": clients - answered,
        "waited": sum(1 for ok, accepted in outcomes if ok and accepted >= 1.0),
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
        burst = _burst(server.base_url)
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
            "figure": f"local API: {BURST} clients at once, not answered (refused, reset, timed out)",
            "value": burst["failed"],
            "unit": "connections",
            "baseline": BURST,
            "baseline_name": "clients",
            "ratio": round(burst["failed"] / BURST, 2),
            "waited_for_backlog": burst["waited"],
        },
        {
            "figure": "local API: share of server time in the stand-in",
            "value": round(customer["stand_in_share"] * 100, 1),
            "unit": "%",
            "baseline": 100,
            "baseline_name": "whole server time",
            "ratio": round(customer["stand_in_share"], 2),
        },
    ]
