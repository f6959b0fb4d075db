"""`make bench`: every figure with its baseline from the same run; a table on stdout and JSON in bench/results/."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench import coldstart, local_api

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["coldstart", "local_api"], action="append")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    chosen = set(args.only or ["coldstart", "local_api"])
    rows: list[dict[str, Any]] = []
    if "coldstart" in chosen:
        rows += coldstart.run(args.rounds)
    if "local_api" in chosen:
        rows += local_api.run()
    print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H%M%S")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(rows, indent=2))
    print(f"\nwritten to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
