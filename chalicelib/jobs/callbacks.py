"""Webhook state on the job item: made pending once when the job ends (endings.py), each attempt claimed once.

Attributes beside the job's own (items.callback_from_item reads them):
  callbackUrl          set at initiate; the job wants a webhook
  callbackStatus       pending -> delivered | failed; absent until the job ends
  callbackAttempts     attempts claimed so far (attempt n is claimed by moving n-1 -> n)
  callbackEvent        the event's raw body, signed and sent unchanged by every attempt
  callbackNextAt       epoch seconds by which the next step is due: the next attempt (its message's
                       delay), or, while an attempt is in flight, the latest it can finish
  callbackLastError    the last failed attempt's reason, short and safe
  callbackDeliveredAt  when a receiver answered 2xx

While a callback is pending the item is listed in the sparse active-jobs index
under its own partition (active = "callbacks"), where settling the ended job
put it; the sweeper queries that partition to re-send a lost message.

Every write is conditional on the attempt count, so SQS redelivering a message,
two consumers racing on one, or the sweeper re-sending a late one can never
claim an attempt twice, and nothing is sent once the event was delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code, query_items
from chalicelib.jobs.items import ACTIVE_INDEX, as_int, job_key
from chalicelib.models import CallbackStatus, iso, utc_now

CALLBACKS_PENDING = "callbacks"  # the active-jobs partition of ended jobs whose webhook is pending
EVENT_ATTRIBUTES = ("callbackEvent", "callbackNextAt")  # dropped once the webhook is settled


@dataclass(frozen=True)
class ClaimedAttempt:
    """What one attempt needs: where to send, and the exact bytes."""

    job_id: str
    attempt: int
    url: str
    event_body: bytes
    owner: str | None = None  # the job's: its messages' group (scheduling.group_for)


@dataclass(frozen=True)
class OverdueCallback:
    job_id: str
    attempts: int  # claimed so far; the next message carries attempts + 1
    owner: str | None = None


def _is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class CallbackStore:
    def __init__(self, table: Any, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._clock = clock

    def _while_at(self, job_id: str, attempts: int, expression: str, values: dict[str, Any]) -> dict | None:
        """Applies `expression` only while the webhook is pending with `attempts` claimed: the item
        after it, or None when someone else moved it first (claimed, retried, settled)."""
        try:
            result = self._table.update_item(
                Key=job_key(job_id),
                ReturnValues="ALL_NEW",
                UpdateExpression=expression,
                ConditionExpression="callbackStatus = :pending AND callbackAttempts = :attempts",
                ExpressionAttributeValues={
                    ":pending": CallbackStatus.PENDING.value,
                    ":attempts": attempts,
                    **values,
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return result.get("Attributes", {})

    def claim(self, job_id: str, attempt: int, in_flight_seconds: int) -> ClaimedAttempt | None:
        """Attempt `attempt` for this caller alone (attempts n-1 -> n); None when delivered, settled or taken.

        The attempt is in flight for at most `in_flight_seconds` from now, so the sweeper measures a lost
        attempt from then, not from when it was due: a message received late (a backlog) is not lost.
        """
        values = {":attempt": attempt, ":check": int(self._clock().timestamp()) + in_flight_seconds}
        item = self._while_at(job_id, attempt - 1, "SET callbackAttempts = :attempt, callbackNextAt = :check", values)
        if item is None:
            return None
        event_body = str(item["callbackEvent"]).encode("ascii")
        return ClaimedAttempt(job_id, attempt, item["callbackUrl"], event_body, item.get("owner"))

    def unclaim(self, job_id: str, attempt: int, next_at: datetime) -> bool:
        """Hands back attempt `attempt`, claimed but not sent (attempts n -> n-1): its message comes again at `next_at`."""
        values = {":previous": attempt - 1, ":next": int(next_at.timestamp())}
        return (
            self._while_at(job_id, attempt, "SET callbackAttempts = :previous, callbackNextAt = :next", values)
            is not None
        )

    def record_retry(self, job_id: str, attempt: int, error: str | None, next_at: datetime) -> bool:
        """Attempt `attempt` failed; the next one is due at `next_at` (the sweeper's yardstick for a lost message)."""
        values = {":error": error or "failed", ":next": int(next_at.timestamp())}
        expression = "SET callbackLastError = :error, callbackNextAt = :next"
        return self._while_at(job_id, attempt, expression, values) is not None

    def settle(self, job_id: str, attempt: int, outcome: CallbackStatus, error: str | None = None) -> bool:
        """Delivered or failed for good: off the sweeper's list, the event body dropped."""
        sets = ["callbackStatus = :outcome"]
        values: dict[str, Any] = {":outcome": outcome.value}
        if outcome is CallbackStatus.DELIVERED:
            sets.append("callbackDeliveredAt = :at")
            values[":at"] = iso(self._clock())
        if error is not None:
            sets.append("callbackLastError = :error")
            values[":error"] = error
        expression = f"SET {', '.join(sets)} REMOVE active, {', '.join(EVENT_ATTRIBUTES)}"
        return self._while_at(job_id, attempt, expression, values) is not None

    def overdue(self, grace_seconds: int, page_size: int = 100) -> list[OverdueCallback]:
        """Pending callbacks whose next step was due more than `grace_seconds` ago: a message or an attempt
        was lost. Every entry of the index's `callbacks` partition is read, page by page."""
        cutoff = int(self._clock().timestamp()) - grace_seconds
        found = []
        for key in self._pending_keys(page_size):
            item = self._table.get_item(Key={"pk": key["pk"], "sk": key["sk"]}, ConsistentRead=True).get("Item")
            if item is None or item.get("callbackStatus") != CallbackStatus.PENDING.value:
                continue
            if as_int(item.get("callbackNextAt")) < cutoff:
                found.append(OverdueCallback(item["jobId"], as_int(item.get("callbackAttempts")), item.get("owner")))
        return found

    def _pending_keys(self, page_size: int) -> Iterator[dict]:
        """The keys the (keys-only, eventually consistent) index lists as pending callbacks."""
        query = {
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": Key("active").eq(CALLBACKS_PENDING),
            "Limit": page_size,
        }
        return query_items(self._table, query)

    def postpone(self, job_id: str, attempts: int) -> bool:
        """Before re-sending: due now, so the next sweep waits a grace period again (if nobody moved on)."""
        values = {":now": int(self._clock().timestamp())}
        return self._while_at(job_id, attempts, "SET callbackNextAt = :now", values) is not None
