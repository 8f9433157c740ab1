"""Business metrics as CloudWatch Embedded Metric Format (EMF) lines, written with Powertools Metrics.

EMF turns a JSON log line into metrics with no API call: nothing is sent from
the request path, and a Lambda pays only for the log bytes (about 300 bytes
an invocation). Each handler invocation adds what happened to one set, and
the middleware in app.py flushes it once at the end, so an invocation writes
one line at most. In `make dev` the lines land in each process's log under
$DEV_STATE_DIR/logs, where `make stats` reads them.

The names are the contract with infra/'s dashboard and alarms
(tests/infra checks that every metric they name is one of these).
"""

from __future__ import annotations

import threading
from enum import Enum
from typing import Any, Callable

NAMESPACE = "Delineate"
SERVICE = "delineate"


class Metric(str, Enum):
    """Each metric and its unit; the unit is what CloudWatch aggregates by."""

    FILES_PREPARED = "FilesPrepared"
    FILES_FAILED = "FilesFailed"
    FILE_WAIT_SECONDS = "FileWaitSeconds"  # from when a file was due to when it was counted
    JOBS_COMPLETED = "JobsCompleted"
    JOBS_FAILED = "JobsFailed"
    JOBS_CANCELLED = "JobsCancelled"
    JOB_DURATION_SECONDS = "JobDurationSeconds"
    WEBHOOK_ATTEMPTS = "WebhookAttempts"
    WEBHOOKS_DELIVERED = "WebhooksDelivered"
    WEBHOOK_FAILURES = "WebhookFailures"
    THROTTLED_REQUESTS = "ThrottledRequests"  # our own 429s
    UNAVAILABLE_RESPONSES = "UnavailableResponses"  # our own 503s
    BUNDLE_BYTES = "BundleBytes"

    @property
    def unit(self) -> str:
        if self.name.endswith("_SECONDS"):
            return "Seconds"
        if self.name.endswith("_BYTES"):
            return "Bytes"
        return "Count"


_lock = threading.Lock()
_pending = False
_metrics: Any = None


def _recorder() -> Any:
    """Powertools' Metrics, imported on first use so a cold start that records nothing does not pay for it."""
    global _metrics
    if _metrics is None:
        from aws_lambda_powertools.metrics import Metrics

        _metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
    return _metrics


def record(metric: Metric, value: float = 1) -> None:
    global _pending
    from aws_lambda_powertools.metrics import MetricUnit

    with _lock:
        _recorder().add_metric(name=metric.value, unit=MetricUnit(metric.unit), value=value)
        _pending = True


def flush() -> None:
    """Writes what this invocation recorded as one EMF line; nothing when it recorded nothing."""
    global _pending
    with _lock:
        if _pending:
            _recorder().flush_metrics()
            _pending = False


# The API's own refusals an operator watches; API Gateway's throttles show in its 4XXError metric.
_COUNTED_STATUSES = {429: Metric.THROTTLED_REQUESTS, 503: Metric.UNAVAILABLE_RESPONSES}


def flush_after(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware (every event type): the handler's metrics leave with its invocation, even when
    it raises. Registered first, so it sees an HTTP response as the client does (our 429s and 503s)."""
    try:
        response = get_response(event)
        counted = _COUNTED_STATUSES.get(getattr(response, "status_code", None))  # type: ignore[arg-type]
        if counted is not None:
            record(counted)
        return response
    finally:
        flush()
