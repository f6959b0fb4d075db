"""`make bench`: every figure with its baseline from the same run; a table on stdout and JSON in bench/results/."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import coldstart, costs, local_api, operations, reconcile_scale, viral

RESULTS = Path(__file__).resolve().parent / "results"


def table(rows: list[dict[str, Any]]) -> str:
    header = ("figure", "value", "baseline", "ratio")
    lines = [header]
    for row in rows:
        value = f"{row['value']} {row['unit']}"
        baseline = f"{row['baseline']} {row['unit']} ({row['baseline_name']})"
        lines.append((row["figure"], value, baseline, f"{row['ratio']}x"))
    widths = [max(len(str(line[i])) for line in lines) for i in range(4)]
    out = [" | ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def operation_rows(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two figures per operation: requests against the design minimum, cost against AppSync's own price."""
    rows = []
    for m in measured:
        rows.append(
            {
                "figure": f"requests: {m['operation']}",
                "value": m["requests"],
                "unit": "requests",
                "baseline": m["design_minimum"],
                "baseline_name": "design minimum",
                "ratio": round(m["requests"] / m["design_minimum"], 2),
                "detail": m["detail"],
            }
        )
        cost = m["cost_per_million"]
        ours = cost["lambda"] + cost["dynamodb"]
        appsync = 4.0
        rows.append(
            {
                "figure": f"Lambda+DynamoDB $/M: {m['operation']}",
                "value": round(ours, 3),
                "unit": "USD",
                "baseline": appsync,
                "baseline_name": "AppSync $/M",
                "ratio": round(ours / appsync, 3),
                "cost_per_million": cost,
                "duration_ms": m["duration_ms"],
                "rru": m["rru"],
                "wru": m["wru"],
            }
        )
    return [*rows, *door_rows(measured)]


def door_rows(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The HTTP API door against the AppSync door, per million `customer` queries, everything billed included
    (goal: at most 40%, docs/performance.md "The HTTP API door")."""
    totals = {m["operation"]: sum(m["cost_per_million"].values()) for m in measured}
    http, appsync = totals.get("customer query, HTTP door"), totals.get("customer query")
    if http is None or appsync is None:
        return []
    return [
        {
            "figure": "customer query $/M, all in: HTTP door",
            "value": round(http, 3),
            "unit": "USD",
            "baseline": round(appsync, 3),
            "baseline_name": "AppSync door",
            "ratio": round(http / appsync, 3),
        }
    ]


def cost_table(rows: list[dict[str, Any]]) -> str:
    """The docs' table of where the money goes, per million operations (from the operations' rows)."""
    lines = [
        "| operation | requests (design min.) | duration ms | RRU | WRU | entry $ | Lambda $ | DynamoDB $ | SES $ | "
        "EventBridge $ | total $ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    requests = {r["figure"].removeprefix("requests: "): r for r in rows if r["figure"].startswith("requests: ")}
    for row in rows:
        if "cost_per_million" not in row:
            continue
        name = row["figure"].split(": ", 1)[1]
        cost = row["cost_per_million"]
        asked = requests[name]
        cells = [
            name,
            f"{asked['value']:g} ({asked['baseline']})",
            f"{row['duration_ms']:.1f}",
            f"{row['rru']:g}",
            f"{row['wru']:g}",
            *(f"{v:.2f}" for v in cost.values()),
            f"{sum(cost.values()):.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """Which machine gave the figures: they are ratios within one run, but the absolute ones depend on it."""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only", choices=["coldstart", "operations", "reconcile_scale", "viral", "local_api"], action="append"
    )
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    costs.hooks()  # before any AWS client exists in this process
    chosen = set(args.only or ["coldstart", "operations", "reconcile_scale", "viral", "local_api"])
    rows: list[dict[str, Any]] = []
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / "functions.log"
    # The functions log to stdout as on Lambda: into a file, so the terminal shows the table only.
    with log_path.open("w") as log, contextlib.redirect_stdout(log):
        if "coldstart" in chosen:
            rows += coldstart.run(args.rounds)
        if "operations" in chosen:
            rows += operation_rows(operations.run())
        if "reconcile_scale" in chosen:
            rows += reconcile_scale.run()
        if "viral" in chosen:
            rows += viral.run()
        if "local_api" in chosen:
            rows += local_api.run()
    print(table(rows))
    print(f"\nmachine: {machine()}; the functions' logs: {log_path}")
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(rows, indent=2))
    table_of_costs = cost_table(rows)
    if "cost_per_million" in json.dumps(rows):
        print("\nper million operations, USD (docs/performance.md):\n" + table_of_costs)
        (RESULTS / "costs.md").write_text(table_of_costs + "\n")
    print(f"\nwritten to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
