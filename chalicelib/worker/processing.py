"""What the worker does with one work message: fan out, prepare a file, build the bundle.

Delivery is at-least-once, so every step is safe to repeat: counting a file is
a conditional transaction (jobs.record_file), fan-out only resends what is still
pending, and the bundle is built by whoever holds the claim (jobs.claim_bundle).
A job keeps at most its window of files out, each counted file releasing the
next (scheduling.py); a failed step comes back after a short backoff (retries.py).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from typing import Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import retries
from chalicelib.aws import tracing
from chalicelib.aws.queue import MalformedMessage, MessageKind, MisaddressedMessage, WorkMessage, WorkQueue
from chalicelib.aws.storage import SourceUnreadable, Storage
from chalicelib.config import Settings
from chalicelib.jobs import scheduling
from chalicelib.jobs.conflicts import StoreContention
from chalicelib.jobs.store import JobStore, RecordOutcome
from chalicelib.models import FileResult, FileStatus, Job, JobStatus, source_key
from chalicelib.webhooks.delivery import Webhooks
from chalicelib.worker import bundling

log = logging.getLogger("delineate.worker")


class UnknownJob(LookupError):
    """A message for a job the table does not hold: retried, then dead-lettered."""


def failure_reason(message: WorkMessage, receives: int, exc: Exception) -> str:
    """The job's public `error` when a message gives up: one fixed sentence per kind of failure."""
    if message.kind is MessageKind.FILE:
        if isinstance(exc, SourceUnreadable):
            return f"file {message.file_id} is archived and could not be read after {receives} attempts"
        if _is_storage_error(exc):
            return f"file {message.file_id} could not be read from storage after {receives} attempts"
        return f"file {message.file_id} could not be prepared after {receives} attempts"
    if message.kind is MessageKind.JOB:
        return f"the job could not be started after {receives} attempts"
    if message.volume is not None:
        return f"volume {message.volume} of the bundle could not be built after {receives} attempts"
    return f"the bundle could not be built after {receives} attempts"


def _is_storage_error(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and exc.operation_name in _STORAGE_READS


_STORAGE_READS = frozenset({"HeadObject", "GetObject"})


class Worker:
    def __init__(
        self,
        store: JobStore,
        queue: WorkQueue,
        storage: Storage,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
        delay_ms: Callable[[int, int], float] = random.uniform,
        webhooks: Webhooks | None = None,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._store, self._queue, self._storage, self._settings = store, queue, storage, settings
        self._sleep = sleep
        self._delay_ms = delay_ms
        self._webhooks = webhooks
        self._jitter = jitter
        self._bundler = bundling.Bundler(store, queue, storage, settings)

    # -- Lambda boundary ---------------------------------------------------------

    def handle_batch(self, records: Iterable[dict]) -> dict:
        """Partial batch response: only the records that failed return to the queue."""
        failures = []
        for record in records:
            try:
                self.handle_record(record)
            except Exception:  # the outermost boundary: one bad record must not sink the batch
                log.exception("work message failed", extra={"messageId": record.get("messageId")})
                self._retry_soon(record)
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def _retry_soon(self, record: dict) -> None:
        """Best effort: if SQS refuses, the message still returns when its visibility timeout lapses."""
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        settings = self._settings
        seconds = retries.backoff_seconds(
            receives, settings.retry_base_seconds, settings.retry_max_seconds, self._jitter
        )
        try:
            self._queue.retry_after(record["receiptHandle"], seconds)
        except (BotoCoreError, ClientError, KeyError) as exc:
            log.warning(
                "could not shorten the retry delay (%s)",
                type(exc).__name__,
                extra={"messageId": record.get("messageId")},
            )

    def handle_record(self, record: dict) -> None:
        """Parses the message once; on its last receive before the DLQ, a failure fails the job."""
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        # A malformed body raises here: there is no job to fail, the message itself goes to the DLQ.
        message = WorkMessage.from_body(record.get("body", ""))
        started = time.monotonic()
        try:
            with tracing.traced(
                f"delineate-{message.kind.value}",
                message.trace,
                jobId=message.job_id,
                fileId=message.file_id,
                receiveCount=receives,
            ):
                self.handle(message, record["messageId"], receives)
        except MisaddressedMessage as exc:
            self._dead_letter(record, message, exc)
            return
        except Exception as exc:
            # Contention is transient, not the job's fault: the message is retried, and
            # should it still be dead-lettered, the sweeper resumes the job.
            if receives >= self._settings.max_receive_count and not isinstance(exc, StoreContention):
                self._give_up(message, receives, exc)
            raise
        log.info(
            "work message handled",
            extra={
                "kind": message.kind.value,
                "jobId": message.job_id,
                "fileId": message.file_id,
                "messageId": record["messageId"],
                "receiveCount": receives,
                "durationMs": round((time.monotonic() - started) * 1000, 1),
            },
        )

    def _dead_letter(self, record: dict, message: WorkMessage, exc: MisaddressedMessage) -> None:
        """A message no retry can make right, and that says nothing about its job: straight to the
        DLQ, and the record counts as handled. The job goes on (its own messages are intact)."""
        self._queue.dead_letter(record.get("body", ""), self._settings.dead_letter_queue_url)
        log.warning(
            "misaddressed work message dead-lettered",
            extra={"jobId": message.job_id, "messageId": record["messageId"], "error": str(exc)},
        )

    def _give_up(self, message: WorkMessage, receives: int, exc: Exception) -> None:
        """Last receive before the DLQ: end the job as failed, with a reason a person can read.

        The reason is served unauthenticated, so it is a fixed sentence per kind of
        failure; the exception (whose text may name the account, a role ARN, the
        bucket) goes to the log only."""
        reason = failure_reason(message, receives, exc)
        log.error(
            "work message gave up; job failed",
            extra={"jobId": message.job_id, "reason": reason, "error": f"{type(exc).__name__}: {exc}"},
        )
        try:
            self._store.fail(message.job_id, reason)
        except Exception:  # the DLQ and the sweeper still guarantee a terminal state
            log.exception("could not mark job failed", extra={"jobId": message.job_id})

    # -- steps -------------------------------------------------------------------

    def handle(self, message: WorkMessage, message_id: str, receives: int = 1) -> None:
        job = self._store.get(message.job_id)
        if job is None:
            raise UnknownJob(f"job {message.job_id} does not exist")
        if message.kind is MessageKind.JOB:
            self.fan_out(job)
        elif message.kind is MessageKind.FILE:
            if message.file_id is None:  # from_body never builds one; the type allows it
                raise MalformedMessage("a file message needs a fileId")
            self.prepare_file(job, message.file_id, receives)
        elif message.kind is MessageKind.CALLBACK:
            if self._webhooks is None or message.attempt is None:
                raise MalformedMessage("this worker delivers no webhooks")
            self._webhooks.deliver(job.job_id, message.attempt)
        elif message.volume is not None:
            self.build_volume(job, message.volume, claimant=message_id)
        else:
            self.build_bundle(job, claimant=message_id)

    def fan_out(self, job: Job) -> None:
        """Starts a queued job with its first window of files; on a processing job (a redelivery
        or a sweeper resume) re-sends what is released and not counted (scheduling.py)."""
        if job.status is JobStatus.QUEUED:
            window = self._settings.job_window
            if self._store.start_processing(job.job_id, window):
                started = dataclasses.replace(job, status=JobStatus.PROCESSING, window=window)
                self._queue.send_many(scheduling.file_messages(started, scheduling.first_released(started)))
                return
            current = self._store.get(job.job_id)
            if current is None:
                return
            job = current
        if job.status is JobStatus.PROCESSING:
            self._resume(job)

    def _resume(self, job: Job) -> None:
        pending = scheduling.released_pending(job, self._store.file_results(job.job_id))
        if pending:
            self._queue.send_many(scheduling.file_messages(job, pending))
        else:
            self._queue.send(scheduling.bundle_message(job))

    def prepare_file(self, job: Job, file_id: int, receives: int = 1) -> None:
        """Counts the file, then releases the next one (or asks for the bundle): four AWS calls
        on a first receive (job, HEAD, count, send), one more to skip the delay on a redelivery."""
        if file_id not in job.file_ids:
            raise MisaddressedMessage(f"file {file_id} is not part of job {job.job_id}")
        if job.status is not JobStatus.PROCESSING:
            return  # cancelled or failed: nothing more is released
        outcome = self._count(job, file_id, receives)
        # A first receive finding the file counted is a copy; the delivery that counted it releases.
        if outcome is RecordOutcome.RECORDED or (outcome is RecordOutcome.DUPLICATE and receives > 1):
            self._queue.send(scheduling.released_by(job, file_id))

    def _count(self, job: Job, file_id: int, receives: int) -> RecordOutcome:
        if receives > 1 and self._store.file_recorded(job.job_id, file_id):
            return RecordOutcome.DUPLICATE  # an earlier receive counted it: no second delay
        self._simulate_preparation()
        size = self._storage.readable_size(source_key(file_id))  # raises if archived
        status = FileStatus.AVAILABLE if size is not None else FileStatus.UNAVAILABLE
        return self._store.record_file(job.job_id, FileResult(file_id, status, size))

    def _simulate_preparation(self) -> None:
        settings = self._settings
        if settings.delay_enabled and settings.delay_max_ms > 0:
            self._sleep(self._delay_ms(settings.delay_min_ms, settings.delay_max_ms) / 1000)

    def build_bundle(self, job: Job, claimant: str) -> None:
        self._bundler.build(job, claimant)

    def build_volume(self, job: Job, number: int, claimant: str) -> None:
        self._bundler.build_volume(job, number, claimant)
