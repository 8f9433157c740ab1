"""Counting a file: one transaction records its result and moves the job's counters.

  Put     pk=JOB#<id>  sk=FILE#<fid>  attribute_not_exists: a file counts once
  Update  pk=JOB#<id>  sk=JOB         status = processing: a closed job counts nothing

A due file is counted without reading the job first, one call less per file
(worker/processing.py): the Update's condition stands in for the status check,
and the start, which wrote the due message after checking the file against
the job's fileIds, for the membership check. Checking the file's WAIT item in
the transaction as well (a ConditionCheck) was measured out: it is billed as
one more transactional item, 2 write units per file, which at the default
profile's peak took the table past the 4,000 writes/s a new on-demand table
starts with (scripts/capacity.py), to guard against a message only our own
roles can send (the work queue is not public).

Knowing whether a count was the job's last used to take a job read after it.
A due message carries the job's size, so its first try also requires
`completedFiles < size - 1`: if that holds, the count was not the last and
nothing more is read (a 1,000-file job saves 999 reads). The count that
would complete the job fails that condition and is tried again without it
(as is any count of a job just closed), then reads the job: of two racing
final counts, the one that makes the total always takes that path.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from chalicelib.jobs.items import active_value, file_item, job_key
from chalicelib.models import FileResult, FileStatus, JobStatus, iso


class RecordOutcome(enum.Enum):
    RECORDED = "recorded"  # this delivery counted the file
    DUPLICATE = "duplicate"  # an earlier delivery already counted it
    JOB_CLOSED = "job_closed"  # the job is no longer processing (cancelled, failed, ...) or is gone
    NOT_LAST = "not_last"  # counted, and `completedFiles < size - 1` held: other files are still to count


def transaction(
    table: str,
    job_id: str,
    result: FileResult,
    now: datetime,
    expires: datetime,
    not_last_of: int | None = None,
) -> list[dict[str, Any]]:
    """The TransactItems; `not_last_of` (the job's size) adds the condition that this count leaves
    a file still to count."""
    values: dict[str, Any] = {
        ":one": 1,
        ":available": 1 if result.status is FileStatus.AVAILABLE else 0,
        ":now": iso(now),
        ":processing": JobStatus.PROCESSING.value,
        ":active": active_value(job_id),
    }
    condition = "#status = :processing"
    if not_last_of is not None:
        condition += " AND completedFiles < :penultimate"
        values[":penultimate"] = not_last_of - 1
    return [
        {
            "Put": {
                "TableName": table,
                "Item": file_item(job_id, result, now, expires),
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": job_key(job_id),
                # `active` names the job's own index shard: a job from before the
                # shards moves there at no extra index write (updatedAt moves it anyway).
                "UpdateExpression": (
                    "ADD completedFiles :one, availableFiles :available SET updatedAt = :now, active = :active"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        },
    ]


def outcome_of_cancellation(reasons: list[str | None]) -> RecordOutcome | None:
    """Which condition refused the transaction, in the order of `transaction`; None: none did."""
    for outcome, reason in zip((RecordOutcome.DUPLICATE, RecordOutcome.JOB_CLOSED), reasons, strict=False):
        if reason == "ConditionalCheckFailed":
            return outcome
    return None
