"""What every benchmark scenario shares: a fresh dev stack, percentiles, waiting for a job."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support.devstack import DevStack, poll_until_terminal, start_dev_stack

Stack = DevStack
SAMPLE_IDS = list(range(70000, 70100, 7))  # the files `make dev` seeds


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: p99 of 100 samples is the 99th smallest, not an interpolation."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def wait_terminal(stack: Stack, job_id: str, timeout: float = 600) -> dict:
    """Polls every 50 ms so a job's measured wall time is off by at most that much."""
    document, _ = poll_until_terminal(stack, job_id, timeout=timeout, interval=0.05)
    return document


@contextmanager
def fresh_stack(directory: Path, **settings: str) -> Iterator[Stack]:
    directory.mkdir(parents=True, exist_ok=True)
    stack = start_dev_stack(directory, timeout=180, **settings)
    try:
        yield stack
    finally:
        stack.stop()
