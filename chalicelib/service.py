"""The API's operations: each is what one route does, minus HTTP."""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Callable

from chalicelib import documents, scheduling, tracing
from chalicelib.aws import dependency
from chalicelib.config import Settings
from chalicelib.errors import Conflict, IdempotencyKeyReused, NotFound
from chalicelib.jobs import IdempotencyConflict, JobStore
from chalicelib.models import FileStatus, InitiateRequest, Job, JobStatus, source_key, utc_now
from chalicelib.queue import WorkQueue
from chalicelib.storage import Storage

DATABASE, QUEUE, STORAGE = "database", "queue", "storage"


class DownloadService:
    def __init__(
        self,
        store: JobStore,
        queue: WorkQueue,
        storage: Storage,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store, self._queue, self._storage, self._settings = store, queue, storage, settings
        self._clock = clock
        self._sleep = sleep

    # -- jobs ---------------------------------------------------------------------

    def initiate(self, request: InitiateRequest) -> tuple[Job, bool]:
        """One job item, one message: no per-file work, so 1,000 files cost what 1 does.

        A replay of an Idempotency-Key whose job never left `queued` re-sends the
        job message: the first attempt may have died between the write and the send.
        """
        with dependency(DATABASE):
            try:
                job, created = self._store.create(request)
            except IdempotencyConflict as conflict:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key was already used with a different body (job {conflict.job_id})"
                ) from None
        tracing.annotate(jobId=job.job_id)
        if created or job.status is JobStatus.QUEUED:
            with dependency(QUEUE):
                self._queue.send(scheduling.job_message(job))
        return job, created

    def accepted_document(self, job: Job) -> dict:
        return documents.accepted_document(job, self.estimate_seconds(job.total_files))

    def estimate_seconds(self, total_files: int) -> int:
        rounds = math.ceil(total_files / self._settings.worker_concurrency)
        return math.ceil(rounds * self._settings.max_delay_seconds) + 1

    def _job(self, job_id: str) -> Job:
        with dependency(DATABASE):
            job = self._store.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def status(self, job_id: str, include_files: bool = False) -> dict:
        job = self._job(job_id)
        files = self._files(job) if include_files else None
        return documents.status_document(job, self._current_url(job), files)

    def result_url(self, job_id: str) -> str:
        job = self._job(job_id)
        url = self._current_url(job)
        if url is None:
            raise Conflict(
                f"job is {job.status.value}; the download is not ready", documents.status_document(job, None)
            )
        return url

    def cancel(self, job_id: str) -> dict:
        with dependency(DATABASE):
            cancelled = self._store.cancel(job_id)
        job = self._job(job_id)
        if not cancelled:
            raise Conflict(f"job is already {job.status.value}", documents.status_document(job, self._current_url(job)))
        return documents.status_document(job, None)

    def _current_url(self, job: Job) -> str | None:
        """The stored URL while it has time left, else a freshly signed one (no AWS call)."""
        if job.status is not JobStatus.COMPLETED or not job.result_key:
            return None
        margin = timedelta(seconds=self._settings.presign_refresh_margin_seconds)
        if job.download_url and job.download_url_expires_at and job.download_url_expires_at - self._clock() > margin:
            return job.download_url
        return documents.sign_bundle(self._storage, self._settings, job.job_id, job.result_key)

    def _files(self, job: Job) -> list[dict]:
        with dependency(DATABASE):
            results = self._store.file_results(job.job_id)
        files = []
        for file_id in job.file_ids:
            result = results.get(file_id)
            available = result is not None and result.status is FileStatus.AVAILABLE
            url = documents.sign_source(self._storage, self._settings, file_id) if available else None
            files.append(documents.file_document(file_id, result, url))
        return files

    # -- single files -------------------------------------------------------------

    def check(self, file_id: int) -> dict:
        with dependency(STORAGE):
            size = self._storage.object_size(source_key(file_id))
        return documents.check_document(file_id, size)

    def start(self, file_id: int) -> tuple[bool, dict]:
        """The original blocking endpoint, bounded: waits up to START_WAIT_MS (within
        REQUEST_TIMEOUT_MS) for a one-file job.

        Returns (finished, document): the original 200 shape when the file is
        ready in time, else the 202 job document to poll, so no proxy cuts it.
        """
        started = time.monotonic()
        job, _ = self.initiate(InitiateRequest((file_id,)))
        # Never wait past the request budget: leave a second to answer before a proxy cuts us.
        budget_ms = min(self._settings.start_wait_ms, max(0, self._settings.request_timeout_ms - 1000))
        deadline = started + budget_ms / 1000
        interval = 0.1
        while time.monotonic() < deadline:
            job = self._job(job.job_id)
            if job.status.terminal:
                return True, self._start_result(job, file_id, started)
            self._sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 2, 1.0)
        job = self._job(job.job_id)
        if job.status.terminal:
            return True, self._start_result(job, file_id, started)
        return False, documents.pending_start_document(job)

    def _start_result(self, job: Job, file_id: int, started: float) -> dict:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        size, url = None, None
        if job.status is JobStatus.COMPLETED and job.available_files > 0:
            with dependency(STORAGE):
                size = self._storage.object_size(source_key(file_id))
            url = documents.sign_source(self._storage, self._settings, file_id)
        return documents.start_document(job, file_id, url, size, elapsed_ms)

    # -- health -------------------------------------------------------------------

    def health(self) -> tuple[bool, dict]:
        """Pings the three dependencies at once: a hung one costs one call's timeout, not three."""
        pings = {STORAGE: self._storage.ping, DATABASE: self._store.ping, QUEUE: self._queue.ping}
        with ThreadPoolExecutor(max_workers=len(pings), thread_name_prefix="health") as pool:
            futures = {name: pool.submit(ping) for name, ping in pings.items()}
            checks = {name: _check(future) for name, future in futures.items()}
        return all(value == "ok" for value in checks.values()), checks


def _check(future: Future) -> str:
    try:
        future.result()
    except Exception:  # any failure of a dependency is what /health reports
        return "error"
    return "ok"
