"""Polling with a deadline: the one loop behind every wait in the service, the dev runners, tests and bench.

The API may only wait within its request budget (a proxy cuts a request that
outlives it), so its waits poll at a growing interval, never sleep past the
deadline, and hand back None when time is up; the dev runners and tests want
the value or an error saying what never happened (`wait_until`).
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def poll(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.2,
    growth: float = 1.0,
    max_interval: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T | None:
    """predicate()'s first truthy value, or None once `timeout` seconds have passed.

    It is asked once more at the deadline, so a change that lands during the
    last sleep is still seen; the interval grows by `growth` up to `max_interval`.
    """
    deadline = clock() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - clock()
        if left <= 0:
            return None
        sleep(min(interval, left))
        interval = interval * growth if max_interval is None else min(interval * growth, max_interval)


def wait_until(predicate: Callable[[], T | None], timeout: float, interval: float = 0.2, what: str = "") -> T:
    """Like `poll`, but a wait that runs out raises TimeoutError naming `what`."""
    value = poll(predicate, timeout, interval)
    if not value:
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
    return value
