"""Job store: reads and conditional writes of the job items (shapes: items.py), TTL.

Every state change is a single conditional write, so a redelivered message
or a racing consumer is a ConditionalCheckFailed, handled by name. A write
that meets another transaction is retried first (transaction_conflicts.py).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Sequence

from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.clients import error_code, query_items
from chalicelib.errors import DependencyUnavailable
from chalicelib.jobs import counting, endings, owners
from chalicelib.jobs.conflicts import ConflictRetryingTable
from chalicelib.jobs.counting import RecordOutcome
from chalicelib.jobs.items import (
    CLAIM_ATTRIBUTES,
    as_int,
    bundle_item,
    file_result_from_item,
    idempotency_key,
    idempotency_put,
    job_from_item,
    job_key,
    new_job_item,
    retention,
    transition_update,
)
from chalicelib.jobs.waits import FileWaits
from chalicelib.models import BuiltBundle, FileResult, FileStatus, InitiateRequest, Job, JobStatus, iso, utc_now


def _is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


log = logging.getLogger("delineate.jobs")
# What may stop settling an ended job: AWS errors and persistent contention. The job ended regardless.
SETTLING_ERRORS = (BotoCoreError, ClientError, DependencyUnavailable)


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    HELD_ELSEWHERE = "held_elsewhere"
    NOT_READY = "not_ready"  # job not processing, or files still pending


class JobStore:
    def __init__(self, table: Any, ttl_seconds: int, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = ConflictRetryingTable(table)
        self.table = self._table  # shared with the job's volume items (jobs/volumes.py)
        self._client = self._table.meta.client
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock
        self.waits = FileWaits(self._table, self._ttl, clock)  # when each started file is due

    # -- creation -----------------------------------------------------------------

    def create(
        self, request: InitiateRequest, owner: str | None = None, max_active: int | None = None
    ) -> tuple[Job, bool]:
        """Writes a queued job; with an Idempotency-Key, returns the existing job instead.

        Returns (job, created). Raises IdempotencyConflict when the key was used
        with a different body, ActiveJobLimitReached when `owner` has `max_active`
        jobs running (owners.py). Job, key and the owner's count are written in
        one transaction, so a key never points at a job that does not exist; with
        neither key nor owner the job is one conditional PutItem (a transaction
        costs twice the write capacity, and the embedded emulator copies the whole
        table for each one).
        """
        now = self._clock()
        expires = now + self._ttl
        job_id = str(uuid.uuid4())
        item = new_job_item(job_id, request, now, expires, owner)
        if not request.idempotency_key and owner is None:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            return job_from_item(item), True
        puts: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table.name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
        ]
        if request.idempotency_key:
            puts.append(idempotency_put(self._table.name, request, owner, job_id, now, expires))
        if owner is not None:
            puts.append(owners.reservation(self._table.name, owner, max_active))
        try:
            self._client.transact_write_items(TransactItems=puts)
        except self._client.exceptions.TransactionCanceledException as exc:
            existing = self._job_for_key(request, owner) if request.idempotency_key else None
            if existing is not None:
                return existing, False
            if owner is not None and max_active is not None and owners.refused_at(exc, len(puts) - 1):
                raise owners.ActiveJobLimitReached(max_active) from None
            raise
        return job_from_item(item), True

    def _job_for_key(self, request: InitiateRequest, owner: str | None) -> Job | None:
        key = idempotency_key(request.idempotency_key or "", owner)
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return None
        if item["requestHash"] != request.fingerprint:
            raise IdempotencyConflict(item["jobId"])
        return self.get(item["jobId"])

    # -- reads --------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job, or None when unknown or past its expiry (TTL deletes lazily)."""
        item = self._table.get_item(Key=job_key(job_id), ConsistentRead=True).get("Item")
        if item is None or as_int(item.get("ttl")) < int(self._clock().timestamp()):
            return None
        return job_from_item(item)

    def file_results(self, job_id: str) -> dict[int, FileResult]:
        query = {
            "KeyConditionExpression": Key("pk").eq(f"JOB#{job_id}") & Key("sk").begins_with("FILE#"),
            "ConsistentRead": True,
        }
        results = (file_result_from_item(item) for item in query_items(self._table, query))
        return {result.file_id: result for result in results}

    # -- transitions --------------------------------------------------------------

    def _transition(
        self,
        job_id: str,
        target: JobStatus,
        sets: dict[str, Any] | None = None,
        removes: Iterable[str] = (),
        extra_condition: str = "",
    ) -> bool:
        """A job that ends is kept JOB_TTL_SECONDS from then (its `ttl` until now bounded how long it may run)."""
        now = self._clock()
        if target.terminal:
            sets = {**(sets or {}), **retention(now + self._ttl)}
        update = transition_update(job_id, target, now, sets, removes, extra_condition)
        try:
            result = self._table.update_item(Key=job_key(job_id), ReturnValues="ALL_NEW", **update)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        if target.terminal:
            self._after_end(job_from_item(result["Attributes"]))
        return True

    def _after_end(self, job: Job) -> None:
        """Right after the write that ended `job`: settle it. A failure is logged, not raised, since
        the job did end; it stays in `ending` and the sweeper settles it."""
        try:
            self.settle_ended(job)
        except SETTLING_ERRORS:
            log.exception("could not settle an ended job", extra={"jobId": job.job_id})

    def settle_ended(self, job: Job) -> bool:
        """Settles `job` with all this store can add to it (a store with webhooks: the event)."""
        return self.settle(job)

    def settle(self, job: Job, callback_event: bytes | None = None) -> bool:
        """What follows the end of `job`, once (endings.py); False when it was settled already.

        A job with a callbackUrl is settled only with its event, by whoever can build it
        (webhooks.delivery.Webhooks); without one it waits in `ending` for them."""
        if job.callback_url is not None and callback_event is None:
            return False
        update = endings.leave_ending(job.job_id, callback_event, self._clock())
        if job.owner is None:  # the job item alone: a plain update, at half a transaction's cost
            try:
                self._table.update_item(**update)
            except ClientError as exc:
                if _is_conditional_failure(exc):
                    return False
                raise
            endings.recorded(job, self._clock())
            return True
        leave = {"Update": {"TableName": self._table.name, **update}}
        try:
            self._client.transact_write_items(TransactItems=[leave, owners.release_item(self._table.name, job.owner)])
        except self._client.exceptions.TransactionCanceledException as exc:
            if owners.refused_at(exc, 0):
                return False  # someone else settled it
            if owners.refused_at(exc, 1):  # the owner's count is at zero already
                log.warning("active job count already zero", extra={"owner": job.owner, "jobId": job.job_id})
                return self.settle(dataclasses.replace(job, owner=None), callback_event)
            raise
        endings.recorded(job, self._clock())
        return True

    def start_processing(self, job_id: str, window: int | None = None) -> bool:
        return self._transition(job_id, JobStatus.PROCESSING, sets={"window": window} if window else None)

    def cancel(self, job_id: str) -> bool:
        return self._transition(job_id, JobStatus.CANCELLED, removes=CLAIM_ATTRIBUTES)

    def fail(self, job_id: str, reason: str) -> bool:
        return self._transition(job_id, JobStatus.FAILED, sets={"error": reason[:1000]}, removes=CLAIM_ATTRIBUTES)

    def complete(
        self,
        job_id: str,
        result_key: str | None,
        size: int | None,
        sha256: str | None = None,
        bundles: Sequence[BuiltBundle] = (),
    ) -> bool:
        """processing -> completed, only once every file is counted (and every volume built: jobs/volumes.py).

        The item holds the bundle's key, never a URL: a URL signed with the
        worker's temporary credentials dies with that session, and a bearer URL
        would sit in the table and its backups. The API signs one per read."""
        now = self._clock()
        sets: dict[str, Any] = {"completedAt": iso(now)}
        if result_key is not None:
            sets.update(resultKey=result_key, size=size, sha256=sha256, bundles=[bundle_item(b) for b in bundles])
        condition = "completedFiles >= totalFiles" + (" AND volumesBuilt >= volumeCount" if len(bundles) > 1 else "")
        return self._transition(
            job_id, JobStatus.COMPLETED, sets=sets, removes=CLAIM_ATTRIBUTES, extra_condition=condition
        )

    def record_file(self, job_id: str, result: FileResult, not_last_of: int | None = None) -> RecordOutcome:
        """Counts one finished file exactly once (jobs/counting.py); given `not_last_of` (the job's
        size), NOT_LAST if files are left to count, else as without it."""
        now = self._clock()
        items = counting.transaction(self._table.name, job_id, result, now, now + self._ttl, not_last_of)
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            outcome = counting.outcome_of_cancellation(reasons)
            if outcome is RecordOutcome.JOB_CLOSED and not_last_of is not None:  # or this is the last count
                return self.record_file(job_id, result)
            if outcome is None:
                raise
            return outcome
        endings.file_recorded(1 if result.status is FileStatus.AVAILABLE else 0)
        return RecordOutcome.RECORDED if not_last_of is None else RecordOutcome.NOT_LAST

    def claim_bundle(self, job_id: str, claimant: str, lease_seconds: int) -> ClaimOutcome:
        """Lets exactly one consumer build the bundle.

        The claim names the message that took it, so a redelivery of that same
        message (its consumer died) takes it over at once; any other message
        waits for the lease to lapse. The lease is a backstop for a consumer
        that dies while its message is also lost.
        """
        now = self._clock()
        try:
            self._table.update_item(
                Key=job_key(job_id),
                UpdateExpression="SET bundleClaim = :claimant, bundleLeaseUntil = :until",
                ConditionExpression=(
                    "#status = :processing AND completedFiles >= totalFiles AND "
                    "(attribute_not_exists(bundleClaim) OR bundleClaim = :claimant OR bundleLeaseUntil < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":claimant": claimant,
                    ":processing": JobStatus.PROCESSING.value,
                    ":now": int(now.timestamp()),
                    ":until": int(now.timestamp()) + lease_seconds,
                },
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            job = self.get(job_id)
            if job is None or job.status is not JobStatus.PROCESSING or not job.all_files_done:
                return ClaimOutcome.NOT_READY
            return ClaimOutcome.HELD_ELSEWHERE
        return ClaimOutcome.CLAIMED

    def ping(self) -> None:
        self._client.describe_table(TableName=self._table.name)


class IdempotencyConflict(Exception):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
