"""The fuzz tier: schemathesis generates requests from chalicelib/openapi.json and
sends them to the real dev stack (moto server + `chalice local` + consumers),
checking every response against the same document."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import requests

from tests.support.devstack import start_dev_stack

ROOT = Path(__file__).resolve().parents[2]
RESULTS_PATH = ROOT / "build" / "fuzz-results.json"
MIN_REQUESTS = 1000

# Work finishes at once (no simulated delay), nobody is rate limited, and /start
# waits briefly so most calls exercise its 202 path and some its 200 path.
FUZZ_STACK = {
    "DOWNLOAD_DELAY_ENABLED": "false",
    "RATE_LIMIT_ENABLED": "false",
    "LOCAL_CONSUMERS": "2",
    "START_WAIT_MS": "400",
    "LOG_LEVEL": "WARNING",
}


class Tally:
    """Every request the fuzzer sent and what came back, per operation."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.by_operation: dict[str, Counter] = defaultdict(Counter)
        self.failures: list[dict] = []

    def record(self, operation: str, status: int, method: str) -> None:
        """Statuses of requests sent with another method (undeclared-method probes) are keyed "PUT 405"."""
        key = str(status) if operation.startswith(method + " ") else f"{method} {status}"
        self.by_operation[operation][key] += 1

    @property
    def total(self) -> int:
        return sum(sum(counts.values()) for counts in self.by_operation.values())

    @property
    def server_errors(self) -> int:
        return sum(
            n for counts in self.by_operation.values() for key, n in counts.items() if int(key.split()[-1]) >= 500
        )

    def as_dict(self) -> dict:
        return {
            "requests": self.total,
            "serverErrors": self.server_errors,
            "nonConforming": len(self.failures),
            "wallSeconds": round(time.monotonic() - self.started, 1),
            "byOperation": {
                op: {"requests": sum(c.values()), "statuses": dict(sorted(c.items()))}
                for op, c in sorted(self.by_operation.items())
            },
            "failures": self.failures[:50],
        }


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("fuzzstack"), **FUZZ_STACK)
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def tally():
    counts = Tally()
    yield counts
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(counts.as_dict(), indent=2) + "\n")
    print(
        f"\nfuzz: {counts.total} requests, {counts.server_errors} 5xx, {len(counts.failures)} non-conforming "
        f"-> {RESULTS_PATH.relative_to(ROOT)}"
    )


@pytest.fixture(scope="session")
def http_session():
    with requests.Session() as session:
        yield session
