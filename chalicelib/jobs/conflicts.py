"""Transaction conflicts on the job table: retried here, briefly, with jitter.

While a TransactWriteItems holds a job item (record_file counts a file, the
idempotent create writes job and key), DynamoDB refuses other writes to that
item: a plain UpdateItem or PutItem raises TransactionConflictException, and a
concurrent transaction is cancelled with a `TransactionConflict` reason. Both
say "try again in a moment", not "your condition failed", and botocore's
retry modes do not retry them. So the job store's writes go through
`ConflictRetryingTable`, which retries a conflict a few times with a short
jittered backoff; one that persists becomes StoreContention: a 503 in the API
(it is a DependencyUnavailable), a retried message in the worker.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, TypeVar

from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code
from chalicelib.errors import DependencyUnavailable

log = logging.getLogger("delineate.store")

T = TypeVar("T")

ATTEMPTS = 4
BASE_DELAY_SECONDS = 0.025  # full jitter over 25, 50, 100 ms: ~0.2 s at worst before giving up


class StoreContention(DependencyUnavailable):
    """A job item stayed held by other transactions through every retry."""

    def __init__(self) -> None:
        super().__init__("database", "the job is being changed concurrently; retry shortly")


def is_transaction_conflict(exc: ClientError) -> bool:
    """A conflict with another transaction, and no failed condition (that answer is definitive)."""
    code = error_code(exc)
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {reason.get("Code") for reason in exc.response.get("CancellationReasons", [])}
    return "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons


def retry_conflicts(
    call: Callable[[], T],
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
) -> T:
    """`call()`, again after a conflict, up to ATTEMPTS times; then StoreContention."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except ClientError as exc:
            if not is_transaction_conflict(exc):
                raise
            if attempt == ATTEMPTS - 1:
                log.warning("transaction conflict persisted", extra={"attempts": ATTEMPTS, "error": error_code(exc)})
                raise StoreContention() from exc
            sleep(jitter(0, BASE_DELAY_SECONDS * 2**attempt))
    raise AssertionError("unreachable")  # the loop returns or raises


class ConflictRetryingTable:
    """A boto3 Table whose writes (and its client's transactions) retry transaction conflicts.

    Everything else is the table's own: reads, `name`, queries.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self.meta = _Meta(_ConflictRetryingClient(table.meta.client))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def put_item(self, **kwargs: Any) -> Any:
        return retry_conflicts(lambda: self._table.put_item(**kwargs))

    def update_item(self, **kwargs: Any) -> Any:
        return retry_conflicts(lambda: self._table.update_item(**kwargs))

    def delete_item(self, **kwargs: Any) -> Any:
        return retry_conflicts(lambda: self._table.delete_item(**kwargs))


class _ConflictRetryingClient:
    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        return retry_conflicts(lambda: self._client.transact_write_items(**kwargs))


class _Meta:
    def __init__(self, client: Any) -> None:
        self.client = client
