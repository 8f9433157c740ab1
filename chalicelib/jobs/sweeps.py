"""The sweeper's side of the job store: stalled jobs, and writes that hold only while a job is as seen.

The active-jobs index is eventually consistent and a scheduled event may be
delivered twice, so the sweeper reads each job itself (consistently) and
conditions its resume or its verdict on the `updatedAt` it read: a job that
moved in between is left alone. Expired jobs are read too (JobStore.get hides
them): `ttl` bounds how long a job may stay active, and the sweeper is what
ends one that outlives it, which also takes it out of the index.

The index's `jobs` and `ending` partitions are each split in ACTIVE_SHARDS
(items.py); a listing reads every shard, and the unsharded value jobs from
before the shards may still hold, and merges them oldest first.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import timedelta
from typing import Any, Iterator

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.aws.clients import query_items
from chalicelib.jobs.items import (
    ACTIVE,
    ACTIVE_INDEX,
    CLAIM_ATTRIBUTES,
    ENDING,
    active_value,
    as_int,
    job_from_item,
    job_key,
    partitions,
    retention,
    transition_update,
)
from chalicelib.jobs.store import JobStore, _is_conditional_failure
from chalicelib.models import Job, JobStatus, iso

# Index entries one sweep looks at, read a page at a time: bounded work per
# run, and enough pages that expired or finished entries cannot hide a live one.
PAGE_SIZE = 100
MAX_ENTRIES_PER_SWEEP = 1000


class SweepingJobStore(JobStore):
    def stalled_job_ids(self, idle_seconds: int, max_entries: int = MAX_ENTRIES_PER_SWEEP) -> list[str]:
        """Jobs not terminal whose last change is older than idle_seconds, oldest first (sparse GSI)."""
        return self._listed(ACTIVE, idle_seconds, max_entries)

    def unsettled_job_ids(self, grace_seconds: int, max_entries: int = MAX_ENTRIES_PER_SWEEP) -> list[str]:
        """Jobs that ended over grace_seconds ago and were never settled: their ender died (endings.py)."""
        return self._listed(ENDING, grace_seconds, max_entries)

    def _listed(self, base: str, idle_seconds: int, max_entries: int) -> list[str]:
        """Oldest first over every shard of `base`: each shard is read a page at a time, and only as
        far as the merge needs, so one run reads at most max_entries plus a page per shard."""
        cutoff = iso(self._clock() - timedelta(seconds=idle_seconds))
        shards = [self._entries(partition, cutoff) for partition in partitions(base)]
        merged = heapq.merge(*shards, key=lambda item: item["updatedAt"])
        return [item["pk"].split("#", 1)[1] for item in itertools.islice(merged, max_entries)]

    def _entries(self, partition: str, cutoff: str | None) -> Iterator[dict[str, Any]]:
        condition = Key("active").eq(partition) & Key("updatedAt").lt(cutoff)
        return query_items(
            self._table, {"IndexName": ACTIVE_INDEX, "KeyConditionExpression": condition, "Limit": PAGE_SIZE}
        )

    def read_stalled(self, job_id: str, idle_seconds: int) -> Job | None:
        """The job, past its TTL or not, if it is still not terminal and idle for idle_seconds."""
        item = self._table.get_item(Key=job_key(job_id), ConsistentRead=True).get("Item")
        if item is None:
            return None
        job = job_from_item(item)
        if job.status.terminal or job.updated_at > self._clock() - timedelta(seconds=idle_seconds):
            return None
        return job

    def past_ttl(self, job: Job) -> bool:
        return job.expires_at < self._clock()

    def waiting(self, job: Job, idle_seconds: int) -> bool:
        """Whether a file of the job is still to come due, or came due less than idle_seconds ago:
        such a job waits for its files, it is not stalled. One Query of the job's wait items
        (jobs/waits.py), made only for a job idle past the threshold."""
        cutoff = (self._clock() - timedelta(seconds=idle_seconds)).timestamp()
        return any(ready_at > cutoff for ready_at in self.waits.due_times(job.job_id).values())

    def note_resume(self, job: Job, counted: bool = True) -> int | None:
        """Counts a resume (unless not `counted`: one made while a backlog waits, which spends
        none of the job's MAX_JOB_RESUMES) and refreshes updatedAt so it is not swept again at once.
        A job still in the unsharded partition moves to its own shard on the way.

        None when the job changed since it was read (progressed, cancelled, resumed by a twin sweep)."""
        try:
            result = self._table.update_item(
                Key=job_key(job.job_id),
                UpdateExpression="ADD resumes :one SET updatedAt = :now, active = :active",
                ConditionExpression="active IN (:active, :unsharded) AND updatedAt = :seen",
                ExpressionAttributeValues={
                    ":one": 1 if counted else 0,
                    ":now": iso(self._clock()),
                    ":seen": iso(job.updated_at),
                    ":active": active_value(job.job_id),
                    ":unsharded": ACTIVE,
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            return None
        return as_int(result["Attributes"].get("resumes"))

    def fail_unchanged(self, job: Job, reason: str) -> bool:
        """Fails the job only if nothing changed it since it was read; allowed past its TTL, which
        is how a job that outlives it ends (and leaves the active-jobs index)."""
        now = self._clock()
        update = transition_update(
            job.job_id,
            JobStatus.FAILED,
            now,
            sets={"error": reason[:1000], **retention(now + self._ttl)},
            removes=CLAIM_ATTRIBUTES,
            extra_condition="updatedAt = :seen",
            extra_values={":seen": iso(job.updated_at)},
            before_ttl=False,
        )
        try:
            result = self._table.update_item(Key=job_key(job.job_id), ReturnValues="ALL_NEW", **update)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        self._after_end(job_from_item(result["Attributes"]))
        return True
