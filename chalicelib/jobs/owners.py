"""Jobs by owner: each API key's active-job count and its job listing.

Active jobs, counted race-free. An owned job is created in one transaction with
`ADD activeJobs 1` on its owner's counter item, conditioned on the count being
under the key's --max-active-jobs; two initiates racing for the last slot are
serialised by DynamoDB, and exactly one of them is refused. The count drops in
the one write that settles the ended job (endings.py), which happens once per
job whoever makes it, the process that ended the job or, should it die first, the
sweeper. Counting the owner-jobs index instead could not be made atomic with the
create.

  pk=OWNER#<key id>  sk=ACTIVE_JOBS   activeJobs   (no `owner`: not in the index)

Listing is a Query on the owner-jobs index (HASH owner, RANGE createdAt), newest
first, never a Scan, then one BatchGetItem of the page's job items: the index
projects only `status` and `ttl` (what the Query filters on, changed at a job's
start and end), so counting a file never writes it (infra/template.yaml). Its cursor is the position of the last job a page returned,
base64url JSON, checked on the way back in: it must name the caller as owner, or
the request is refused, so a cursor cannot reach into another key's jobs.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any, Callable

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from chalicelib.errors import DependencyUnavailable
from chalicelib.jobs.items import JOB_SK, as_int, job_from_item
from chalicelib.models import Job, parse_iso, utc_now

OWNER_INDEX = "owner-jobs"
# What the index projects beside the keys (infra/template.yaml): the page Query's status filter and
# expiry check. Both change only at a job's start and end, never per counted file.
OWNER_INDEX_ATTRIBUTES = ("status", "ttl")
_COUNTER_SK = "ACTIVE_JOBS"
# Query rounds one listing page may take when a status filter skips most jobs, and
# BatchGetItem rounds for the keys it leaves unprocessed (under throttling).
_MAX_QUERY_ROUNDS = 10


class ActiveJobLimitReached(Exception):
    """The owner already has as many non-terminal jobs as its key allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class InvalidCursor(ValueError):
    """A cursor this service did not hand to this caller."""


def counter_key(owner: str) -> dict[str, str]:
    return {"pk": f"OWNER#{owner}", "sk": _COUNTER_SK}


def reservation(table_name: str, owner: str, limit: int | None) -> dict[str, Any]:
    """The transaction item counting one more active job; refused at `limit` (None: only counted)."""
    update: dict[str, Any] = {
        "TableName": table_name,
        "Key": counter_key(owner),
        "UpdateExpression": "ADD activeJobs :one",
        "ExpressionAttributeValues": {":one": 1},
    }
    if limit is not None:
        update["ConditionExpression"] = "attribute_not_exists(activeJobs) OR activeJobs < :limit"
        update["ExpressionAttributeValues"][":limit"] = limit
    return {"Update": update}


def refused_at(exc: ClientError, index: int) -> bool:
    """Whether the transaction item at `index` is the one whose condition failed."""
    reasons = exc.response.get("CancellationReasons", [])
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"


def release_item(table_name: str, owner: str) -> dict[str, Any]:
    """The transaction item for one active job of `owner` ending; never below zero (a repaired or
    missing counter), and then endings.py settles without it."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": counter_key(owner),
            "UpdateExpression": "ADD activeJobs :minus",
            "ConditionExpression": "activeJobs > :zero",
            "ExpressionAttributeValues": {":minus": -1, ":zero": 0},
        }
    }


def active_jobs(table: Any, owner: str) -> int:
    item = table.get_item(Key=counter_key(owner), ConsistentRead=True).get("Item") or {}
    return as_int(item.get("activeJobs"))


def encode_cursor(item: dict[str, Any]) -> str:
    position = {"o": item["owner"], "c": item["createdAt"], "j": item["pk"].split("#", 1)[1]}
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, owner: str) -> dict[str, str]:
    """The index position a cursor names, as an ExclusiveStartKey; only the caller's own."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
        created, job_id = position["c"], str(uuid.UUID(position["j"]))
        if position["o"] != owner or parse_iso(created) is None:
            raise InvalidCursor("cursor: not one this listing handed out")
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise InvalidCursor("cursor: not one this listing handed out") from None
    return {"pk": f"JOB#{job_id}", "sk": JOB_SK, "owner": owner, "createdAt": created}


class OwnerJobs:
    """Reads of one owner's jobs on the owner-jobs index (a boto3 Table resource)."""

    def __init__(self, table: Any, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._clock = clock

    def page(
        self, owner: str, limit: int, cursor: str | None = None, status: str | None = None
    ) -> tuple[list[Job], str | None]:
        """Up to `limit` jobs, newest first, and the cursor of the next page (None: no more).

        With a status filter DynamoDB applies `Limit` before the filter, so a
        page is gathered over several Query rounds; past _MAX_QUERY_ROUNDS it
        returns what it has, and the cursor carries on from where it stopped.
        """
        query: dict[str, Any] = {
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": Key("owner").eq(owner),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if status is not None:
            query["FilterExpression"] = Attr("status").eq(status)
        if cursor is not None:
            query["ExclusiveStartKey"] = decode_cursor(cursor, owner)
        now = int(self._clock().timestamp())
        items: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        for _ in range(_MAX_QUERY_ROUNDS):
            result = self._table.query(**query)
            items.extend(item for item in result["Items"] if as_int(item.get("ttl")) >= now)
            last = result.get("LastEvaluatedKey")
            if last is None or len(items) >= limit:
                break
            query["ExclusiveStartKey"] = last
        if len(items) > limit:
            items, last = items[:limit], items[limit - 1]
        next_cursor = encode_cursor(last) if last is not None else None
        return self._jobs([{"pk": item["pk"], "sk": item["sk"]} for item in items]), next_cursor

    def _jobs(self, keys: list[dict[str, str]]) -> list[Job]:
        """The listed jobs in index order, read whole (consistently, as a status read is); one
        BatchGetItem takes up to 100 keys, a page's most, and keys it left unprocessed are asked again."""
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {self._table.name: {"Keys": keys, "ConsistentRead": True}} if keys else {}
        for _ in range(_MAX_QUERY_ROUNDS):
            if not request:
                break
            result = self._table.meta.client.batch_get_item(RequestItems=request)
            found.update((item["pk"], item) for item in result["Responses"].get(self._table.name, []))
            request = result.get("UnprocessedKeys") or {}
        if request:  # the table kept refusing part of the page: the client retries after a 503
            raise DependencyUnavailable("database", "listed jobs left unread")
        return [job_from_item(found[key["pk"]]) for key in keys if key["pk"] in found]
