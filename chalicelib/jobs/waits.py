"""When each started file is due: one small item per started file, written once.

  pk=JOB#<id>  sk=WAIT#<fid>  readyAt=<epoch seconds>  ttl

Starting a file is one conditional PutItem (attribute_not_exists): the first
delivery to start it wins and fixes its due time. A redelivery, a copy or a
sweeper's resume finds the item (ReturnValuesOnConditionCheckFailure hands it
back in the same call) and never prepares the file again: it waits for the
same due time, or counts the file once that has passed. An item is well under
1 KB, so a start costs 1 WCU whatever the size of the job item.

The items live under the job's own partition key, so a 1,000-file job's starts
spread over nothing shared: each job is its own partition, well inside
DynamoDB's 1,000 WCU per partition (DynamoDB Developer Guide, "partitions").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code, query_items
from chalicelib.jobs.items import WAIT_PREFIX, wait_key


class StartOutcome(enum.Enum):
    STARTED = "started"  # this delivery started the file: it is due at `ready_at`
    ALREADY_STARTED = "already_started"  # an earlier delivery did; `ready_at` is the due time it fixed


@dataclass(frozen=True)
class Start:
    outcome: StartOutcome
    ready_at: float


class FileWaits:
    def __init__(self, table: Any, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._table, self._ttl, self._clock = table, ttl, clock

    def start(self, job_id: str, file_id: int, ready_at: float) -> Start:
        """Records that the file is due at `ready_at`, unless it was started before."""
        expires = self._clock() + self._ttl
        item = {
            **wait_key(job_id, file_id),
            "readyAt": Decimal(str(round(ready_at, 3))),
            "ttl": int(expires.timestamp()),
        }
        try:
            self._table.put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(sk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            existing = exc.response.get("Item", {}).get("readyAt", {}).get("N")
            return Start(StartOutcome.ALREADY_STARTED, float(existing) if existing is not None else ready_at)
        return Start(StartOutcome.STARTED, ready_at)

    def due_times(self, job_id: str) -> dict[int, float]:
        """Every started file of the job and when it is due (the sweeper and a resume read them)."""
        query = {
            "KeyConditionExpression": Key("pk").eq(f"JOB#{job_id}") & Key("sk").begins_with(WAIT_PREFIX),
            "ProjectionExpression": "sk, readyAt",
            "ConsistentRead": True,
        }
        items = query_items(self._table, query)
        return {int(item["sk"].removeprefix(WAIT_PREFIX)): float(item["readyAt"]) for item in items}
