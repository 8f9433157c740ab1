"""How long a failed work message waits before its next attempt.

Without this a failed message reappears only when its visibility timeout
lapses: six times the function timeout in the cloud (30 minutes), so one
throttled HEAD would hold a file for half an hour. The worker instead sets the
message's visibility to a short delay that doubles with each receive, capped,
with jitter so that messages failing together (an outage) do not return
together. The receive count still grows on each attempt, so the queue's
maxReceiveCount still ends a message that never succeeds in the DLQ.
"""

from __future__ import annotations

import math
import random
from typing import Callable


def backoff_seconds(
    receives: int,
    base: float,
    cap: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> int:
    """min(cap, base x 2^(receives-1)), drawn from its upper half ("equal jitter") and rounded up,
    since SQS takes whole seconds: the delay still grows with every receive, never reaching zero
    unless base is zero."""
    ceiling = min(cap, base * 2 ** max(0, receives - 1))
    return min(math.ceil(jitter(ceiling / 2, ceiling)), math.ceil(cap))
