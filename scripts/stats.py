"""`make stats`: a summary of the dev stack's metrics over the last N minutes, read from its EMF log lines.

Every process of `make dev` writes its log under $DEV_STATE_DIR/logs (.dev/logs by default); each
invocation that recorded metrics wrote one Embedded Metric Format line there (chalicelib/metrics.py).
In the cloud the same lines become CloudWatch metrics and the operations dashboard shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[1]


def emf_records(lines: Iterable[str]) -> Iterator[dict]:
    for line in lines:
        start = line.find('{"_aws"')
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record.get("_aws"), dict):
            yield record


def collect(records: Iterable[dict], since_ms: float) -> dict[str, tuple[str, list[float]]]:
    """metric name -> (unit, every value recorded since `since_ms`)."""
    found: dict[str, tuple[str, list[float]]] = {}
    values: dict[str, list[float]] = defaultdict(list)
    for record in records:
        meta = record["_aws"]
        if meta.get("Timestamp", 0) < since_ms:
            continue
        for directive in meta.get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                raw = record.get(name, [])
                values[name].extend(float(v) for v in (raw if isinstance(raw, list) else [raw]))
                found[name] = (metric.get("Unit", "None"), values[name])
    return found


def render(found: dict[str, tuple[str, list[float]]], minutes: float) -> str:
    if not found:
        return f"no metrics in the last {minutes:g} minutes"
    rows = [
        f"last {minutes:g} minutes",
        f"{'metric':<22} {'unit':<8} {'n':>6} {'sum':>12} {'p50':>9} {'p95':>9} {'max':>9}",
    ]
    for name in sorted(found):
        unit, values = found[name]
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        rows.append(
            f"{name:<22} {unit:<8} {len(values):>6} {sum(values):>12,.1f} "
            f"{statistics.median(values):>9.2f} {p95:>9.2f} {ordered[-1]:>9.2f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15)
    default_logs = Path(os.environ.get("DEV_STATE_DIR") or ROOT / ".dev") / "logs"
    parser.add_argument("--logs", type=Path, default=default_logs)
    args = parser.parse_args(argv)
    if not args.logs.is_dir():
        parser.error(f"{args.logs} does not exist: start the stack with `make dev` first")
    since_ms = (time.time() - args.minutes * 60) * 1000

    def lines() -> Iterator[str]:
        for path in sorted(args.logs.glob("*.log")):
            with path.open(errors="replace") as handle:
                yield from handle

    print(render(collect(emf_records(lines()), since_ms), args.minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
