"""What the worker does with one work message: fan out, start or count a file, build the bundle.

A file's preparation (the simulated DOWNLOAD_DELAY_*) is a wait, not work: the
worker records when the file is due (jobs/waits.py) and hands its message back
delayed until then, so a worker holds a file only for its own AWS calls. In a
serverless worker a sleep is a bill (at 105 s a file, 10,000 users x 1,000
files a day kept ~12,200 invocations asleep); a delayed SQS message is not.

Delivery is at-least-once, so every step is safe to repeat: starting a file is
a conditional write (a copy never prepares it twice), counting is a conditional
transaction (jobs.record_file), fan-out only resends what is still pending,
and the bundle is built by whoever holds the claim (jobs.claim_bundle). A job
keeps at most its window of files waiting to start, each started file
releasing the next (scheduling.py); a failed step comes back after a short
backoff (retries.py).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from typing import Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import metrics, retries
from chalicelib.aws import tracing
from chalicelib.aws.queue import (
    MAX_DELAY_SECONDS,
    MalformedMessage,
    MessageKind,
    MisaddressedMessage,
    WorkMessage,
    WorkQueue,
)
from chalicelib.aws.storage import SourceUnreadable, Storage
from chalicelib.config import Settings
from chalicelib.jobs import scheduling
from chalicelib.jobs.conflicts import StoreContention
from chalicelib.jobs.store import JobStore, RecordOutcome
from chalicelib.jobs.waits import StartOutcome
from chalicelib.metrics import Metric
from chalicelib.models import FileResult, FileStatus, Job, JobStatus, source_key
from chalicelib.webhooks.delivery import Webhooks
from chalicelib.worker import bundling
from chalicelib.worker.failures import failure_reason

log = logging.getLogger("delineate.worker")


class UnknownJob(LookupError):
    """A message for a job the table does not hold: retried, then dead-lettered."""


class Worker:
    def __init__(
        self,
        store: JobStore,
        queue: WorkQueue,
        storage: Storage,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        delay_ms: Callable[[int, int], float] = random.uniform,
        webhooks: Webhooks | None = None,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._store, self._queue, self._storage, self._settings = store, queue, storage, settings
        self._clock = clock  # wall clock: a due time is compared across workers
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
        due = message.ready_at
        if (
            message.kind is MessageKind.FILE
            and message.file_id is not None
            and due is not None
            and due <= self._clock()
        ):
            self.count_due(message.job_id, message.file_id, due, receives, message.total_files)  # reads no job
            return
        job = self._store.get(message.job_id)
        if job is None:
            raise UnknownJob(f"job {message.job_id} does not exist")
        if message.kind is MessageKind.JOB:
            self.fan_out(job)
        elif message.kind is MessageKind.FILE:
            if message.file_id is None:  # from_body never builds one; the type allows it
                raise MalformedMessage("a file message needs a fileId")
            self.prepare_file(job, message.file_id, receives, message.ready_at)
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
        """Every uncounted file still waiting for its due time is left to its due message."""
        counted = self._store.file_results(job.job_id)
        waits = self._store.waits.due_times(job.job_id)
        pending = scheduling.released_pending(job, counted, waits, self._clock())
        if pending:
            self._queue.send_many(scheduling.file_messages(job, pending))
        elif len(counted) >= job.total_files:
            self._queue.send(scheduling.bundle_message(job))

    def prepare_file(self, job: Job, file_id: int, receives: int = 1, ready_at: float | None = None) -> None:
        """A start message (no `ready_at`) starts the file: records when it is due, releases the
        next file and comes back delayed until then, so no worker is held while the file waits
        (three AWS calls: job, wait item, one batch send). A due message counts it (`count_due`)."""
        if file_id not in job.file_ids:
            raise MisaddressedMessage(f"file {file_id} is not part of job {job.job_id}")
        if job.status is not JobStatus.PROCESSING:
            return  # cancelled or failed: nothing more is released, a due file is not counted
        now = self._clock()
        if ready_at is not None:
            if ready_at > now:  # a wait longer than one SQS delay: the next link
                self._queue.send(self._due_message(job, file_id, ready_at, now))
            else:
                self.count_due(job.job_id, file_id, ready_at, receives, job.total_files)
            return
        delay = self._preparation_seconds()
        if delay > 0:
            ready_at = self._start(job, file_id, receives, now, now + delay)
            if ready_at > now:
                return  # waiting: the due message counts it
            self.count_due(job.job_id, file_id, ready_at, receives, job.total_files)  # started by a lost delivery
            return
        self._count(job.job_id, file_id, receives, successor=scheduling.released_by(job, file_id))

    def count_due(
        self, job_id: str, file_id: int, ready_at: float, receives: int = 1, total_files: int | None = None
    ) -> None:
        """Counts a started file once it is due without reading the job: the count's conditions refuse
        a closed job and, given the job's size, say whether files are left to count (jobs/counting.py).
        Two calls, HEAD and the count; the last count reads the job. A failure reads it too: a closed
        job's due file is dropped, even one that can never be read."""
        metrics.record(Metric.FILE_WAIT_SECONDS, self._clock() - ready_at)  # how far behind the workers are
        try:
            self._count(job_id, file_id, receives, total_files=total_files)
        except (SourceUnreadable, BotoCoreError, ClientError):
            job = self._store.get(job_id)
            if job is not None and job.status is JobStatus.PROCESSING:
                raise

    def _start(self, job: Job, file_id: int, receives: int, now: float, ready_at: float) -> float:
        """Starts the file once (jobs/waits.py) and returns when it is due. The delivery that started
        it, or a redelivery (its earlier receive may have died before sending), releases the next
        file and sends the due message; a first receive finding it started is a copy and sends nothing."""
        start = self._store.waits.start(job.job_id, file_id, ready_at)
        if start.outcome is StartOutcome.STARTED:
            log.info("file preparation started", extra={"jobId": job.job_id, "fileId": file_id, "readyAt": ready_at})
        elif receives <= 1:
            return start.ready_at
        successor = scheduling.released_by(job, file_id)
        messages = [successor] if successor else []
        if start.ready_at > now:
            messages.append(self._due_message(job, file_id, start.ready_at, now))
        if messages:
            self._queue.send_many(messages)
        return start.ready_at

    def _due_message(self, job: Job, file_id: int, ready_at: float, now: float) -> WorkMessage:
        # DelaySeconds is whole seconds, at most 900 (aws/queue.py): rounded up, a file never
        # counts before its delay; a longer wait is chained, one delayed message per 900 s.
        delay = min(math.ceil(ready_at - now), MAX_DELAY_SECONDS)
        return scheduling.due_message(job, file_id, ready_at, delay)

    def _count(
        self,
        job_id: str,
        file_id: int,
        receives: int,
        successor: WorkMessage | None = None,
        total_files: int | None = None,
    ) -> None:
        """Counts the file once; the delivery that counted it (or a redelivery: its earlier receive
        may have died in between) releases `successor` (a file with no wait: the delay is off) or,
        when there is none, asks for the bundle if every file is counted now."""
        size = self._storage.readable_size(source_key(file_id))  # raises if archived
        status = FileStatus.AVAILABLE if size is not None else FileStatus.UNAVAILABLE
        outcome = self._store.record_file(job_id, FileResult(file_id, status, size), total_files)
        if outcome is RecordOutcome.NOT_LAST:  # a due file (no successor) that left files to count
            return
        if outcome is not RecordOutcome.RECORDED and not (outcome is RecordOutcome.DUPLICATE and receives > 1):
            return
        if successor:  # counted before the successor it releases: not the last count
            self._queue.send(successor)
            return
        current = self._store.get(job_id)
        if current is not None and current.status is JobStatus.PROCESSING and current.all_files_done:
            self._queue.send(scheduling.bundle_message(current))

    def _preparation_seconds(self) -> float:
        settings = self._settings
        if not settings.delay_enabled or settings.delay_max_ms <= 0:
            return 0.0
        return self._delay_ms(settings.delay_min_ms, settings.delay_max_ms) / 1000

    def build_bundle(self, job: Job, claimant: str) -> None:
        self._bundler.build(job, claimant)

    def build_volume(self, job: Job, number: int, claimant: str) -> None:
        self._bundler.build_volume(job, number, claimant)
