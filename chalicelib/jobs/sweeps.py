"""The sweeper's side of the job store: stalled jobs, and writes that hold only while a job is as seen.

The active-jobs index is eventually consistent and a scheduled event may be
delivered twice, so the sweeper reads each job itself (consistently) and
conditions its resume or its verdict on the `updatedAt` it read: a job that
moved in between is left alone. Expired jobs are read too (JobStore.get hides
them): `ttl` bounds how long a job may stay active, and the sweeper is what
ends one that outlives it, which also takes it out of the index.
"""

from __future__ import annotations

from datetime import timedelta

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.jobs.items import (
    ACTIVE,
    ACTIVE_INDEX,
    CLAIM_ATTRIBUTES,
    ENDING,
    as_int,
    job_from_item,
    job_key,
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

    def _listed(self, partition: str, idle_seconds: int, max_entries: int) -> list[str]:
        cutoff = iso(self._clock() - timedelta(seconds=idle_seconds))
        query = {
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": Key("active").eq(partition) & Key("updatedAt").lt(cutoff),
            "Limit": PAGE_SIZE,
        }
        job_ids: list[str] = []
        while len(job_ids) < max_entries:
            page = self._table.query(**query)
            job_ids.extend(item["pk"].split("#", 1)[1] for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return job_ids[:max_entries]

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

    def note_resume(self, job: Job) -> int | None:
        """Counts a resume and refreshes updatedAt so the job is not swept again at once.

        None when the job changed since it was read (progressed, cancelled, resumed by a twin sweep)."""
        try:
            result = self._table.update_item(
                Key=job_key(job.job_id),
                UpdateExpression="ADD resumes :one SET updatedAt = :now",
                ConditionExpression="active = :active AND updatedAt = :seen",
                ExpressionAttributeValues={
                    ":one": 1,
                    ":now": iso(self._clock()),
                    ":seen": iso(job.updated_at),
                    ":active": ACTIVE,
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            return None
        return as_int(result["Attributes"]["resumes"])

    def fail_unchanged(self, job: Job, reason: str) -> bool:
        """Fails the job only if nothing changed it since it was read; allowed past its TTL, which
        is how a job that outlives it ends (and leaves the active-jobs index)."""
        now = self._clock()
        update = transition_update(
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
