"""The API's operations: each is what one route does, minus HTTP."""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Callable

from chalicelib.api import live
from chalicelib.aws import tracing
from chalicelib.aws.clients import dependency
from chalicelib.aws.queue import WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, IdempotencyKeyReused, NotFound, RateLimited, ValidationError
from chalicelib.jobs import documents, scheduling
from chalicelib.jobs.owners import ActiveJobLimitReached, InvalidCursor, OwnerJobs
from chalicelib.jobs.store import IdempotencyConflict, JobStore
from chalicelib.keys.store import ApiKey
from chalicelib.models import FileStatus, InitiateRequest, Job, JobStatus, source_key, utc_now
from chalicelib.polling import poll
from chalicelib.webhooks.delivery import check_callback

DATABASE, QUEUE, STORAGE = "database", "queue", "storage"


def _owner(caller: ApiKey | None) -> str | None:
    return caller.key_id if caller is not None else None


class DownloadService:
    """Every operation takes the `caller`: the API key the request presented, or None
    when AUTH_MODE=none. A job is seen only by the caller that owns it; another
    key's job is NotFound, word for word as an unknown id, so ids cannot be probed."""

    def __init__(
        self,
        store: JobStore,
        queue: WorkQueue,
        storage: Storage,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        owner_jobs: OwnerJobs | None = None,
    ) -> None:
        self._store, self._queue, self._storage, self._settings = store, queue, storage, settings
        self._owner_jobs = owner_jobs
        self._clock = clock
        self._sleep = sleep

    # -- jobs ---------------------------------------------------------------------

    def initiate(self, request: InitiateRequest, caller: ApiKey | None = None) -> tuple[Job, bool]:
        """One job item, one message: no per-file work, so 1,000 files cost what 1 does.

        A replay of an Idempotency-Key whose job never left `queued` re-sends the
        job message: the first attempt may have died between the write and the send.
        """
        if request.callback_url is not None:
            check_callback(request.callback_url, self._settings.callback_allow_private)
        with dependency(DATABASE):
            try:
                job, created = self._store.create(request, _owner(caller), caller.max_active_jobs if caller else None)
            except IdempotencyConflict as conflict:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key was already used with a different body (job {conflict.job_id})"
                ) from None
            except ActiveJobLimitReached as reached:
                raise RateLimited(
                    f"max active jobs exceeded: this API key may have {reached.limit} jobs queued or "
                    "processing at once; wait for one to finish or cancel one"
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

    def _job(self, job_id: str, caller: ApiKey | None) -> Job:
        with dependency(DATABASE):
            job = self._store.get(job_id)
        if job is None or job.owner != _owner(caller):
            raise NotFound(f"job {job_id} not found")
        return job

    def status(self, job_id: str, include_files: bool = False, caller: ApiKey | None = None) -> dict:
        job = self._job(job_id, caller)
        return self._status_document(job, include_files)

    def _status_document(self, job: Job, include_files: bool, file_urls: bool = True) -> dict:
        files = self._files(job, file_urls) if include_files else None
        urls = documents.sign_bundles(self._storage, self._settings, job) if job.result_key else []
        return documents.status_document(job, urls[0] if urls else None, files, urls)

    def watch_status(
        self, job_id: str, include_files: bool, condition: live.Condition, caller: ApiKey | None = None
    ) -> live.Watched:
        """A status read with If-None-Match, held under Prefer: wait until the job changes.

        The hold re-reads the job item only (one GetItem, through the same
        lookup as every read) and builds the document once, at the end. A
        terminal job never changes, so it is never held.
        """
        started = time.monotonic()
        job = self._job(job_id, caller)
        version = live.version_of(job, include_files)
        applied = None
        if condition.wait_seconds is not None:
            wanted = min(condition.wait_seconds, self._settings.long_poll_max_seconds)
            held = live.hold_seconds(wanted, self._settings.request_timeout_ms)
            applied = int(held)
            if condition.matches(version) and not job.status.terminal:
                changed = live.wait_for_change(
                    lambda: self._job(job_id, caller),
                    lambda j: live.version_of(j, include_files),
                    version,
                    started + held,
                    self._sleep,
                )
                if changed is not None:
                    job, version = changed, live.version_of(changed, include_files)
        document = None if condition.matches(version) else self._status_document(job, include_files)
        return live.Watched(version, job.status.terminal, document, applied)

    def stream(self, job_id: str, include_files: bool, last_event_id: str | None, caller: ApiKey | None = None) -> str:
        """One bounded SSE response (chalicelib/api/live.py): at most STREAM_SECONDS and LONG_POLL_MAX_SECONDS,
        within REQUEST_TIMEOUT_MS, and at most STREAM_MAX_BYTES but for a lone event."""
        started = time.monotonic()
        job = self._job(job_id, caller)
        events = live.EventStream(
            read=lambda: self._job(job_id, caller),
            render=lambda current, file_urls: self._status_document(current, include_files, file_urls),
            version=lambda current: live.version_of(current, include_files),
            retry_ms=max(1, self._settings.status_retry_after_seconds) * 1000,
            sleep=self._sleep,
        )
        wanted = min(live.STREAM_SECONDS, self._settings.long_poll_max_seconds)
        deadline = started + live.hold_seconds(wanted, self._settings.request_timeout_ms)
        return events.body(job, last_event_id, deadline)

    def result_url(self, job_id: str, caller: ApiKey | None = None, volume: int | None = None) -> str:
        """The bundle's URL, or volume `volume`'s (from 1) when the job was split into several."""
        job = self._job(job_id, caller)
        url = self._current_url(job)
        if url is None:
            raise Conflict(
                f"job is {job.status.value}; the download is not ready", documents.status_document(job, None)
            )
        if volume is None or volume == 1:
            return url
        bundles = job.built_bundles
        if volume > len(bundles):
            raise NotFound(f"volume {volume} not found: this job has {len(bundles)} (volume=1..{len(bundles)})")
        key = bundles[volume - 1].key
        return documents.sign_bundle(self._storage, self._settings, job.job_id, key, volume, len(bundles))

    def download_origin(self) -> str | None:
        """Where bundle URLs point: /app may connect there to verify a zip in the browser."""
        return self._storage.presign_origin()

    def cancel(self, job_id: str, caller: ApiKey | None = None) -> dict:
        self._job(job_id, caller)  # another key's job is not found, and not cancelled
        with dependency(DATABASE):
            cancelled = self._store.cancel(job_id)
        job = self._job(job_id, caller)
        if not cancelled:
            raise Conflict(f"job is already {job.status.value}", self._status_document(job, False))
        return documents.status_document(job, None)

    def _current_url(self, job: Job) -> str | None:
        """Signed at read time (a local signature, no AWS call) with the API's own credentials;
        Storage.presign reuses a signature for at most a minute."""
        if job.status is not JobStatus.COMPLETED or not job.result_key:
            return None
        count = len(job.built_bundles)
        return documents.sign_bundle(self._storage, self._settings, job.job_id, job.result_key, 1, count)

    def _files(self, job: Job, with_urls: bool = True) -> list[dict]:
        with dependency(DATABASE):
            results = self._store.file_results(job.job_id)
        files = []
        for file_id in job.file_ids:
            result = results.get(file_id)
            available = result is not None and result.status is FileStatus.AVAILABLE
            url = documents.sign_source(self._storage, self._settings, file_id) if available and with_urls else None
            files.append(documents.file_document(file_id, result, url))
        return files

    def list_jobs(self, caller: ApiKey | None, limit: int, cursor: str | None, status: str | None) -> dict:
        """The caller's jobs, newest first, a page at a time (jobs/owners.py: OwnerJobs)."""
        if caller is None or self._owner_jobs is None:
            raise Forbidden("listing jobs needs an API key: jobs have no owner when AUTH_MODE=none")
        try:
            with dependency(DATABASE):
                jobs, next_cursor = self._owner_jobs.page(caller.key_id, limit, cursor, status)
        except InvalidCursor as invalid:
            raise ValidationError(str(invalid)) from None
        return documents.job_list_document([self._status_document(job, False) for job in jobs], next_cursor)

    # -- single files -------------------------------------------------------------

    def check(self, file_id: int) -> dict:
        with dependency(STORAGE):
            size = self._storage.object_size(source_key(file_id))
        return documents.check_document(file_id, size)

    def start(self, file_id: int, caller: ApiKey | None = None) -> tuple[bool, dict]:
        """The original blocking endpoint, bounded: waits up to START_WAIT_MS (within
        REQUEST_TIMEOUT_MS) for a one-file job.

        Returns (finished, document): the original 200 shape when the file is
        ready in time, else the 202 job document to poll, so no proxy cuts it.
        """
        started = time.monotonic()
        job, _ = self.initiate(InitiateRequest((file_id,)), caller)
        # Never wait past the request budget: leave a second to answer before a proxy cuts us.
        budget_ms = min(self._settings.start_wait_ms, max(0, self._settings.request_timeout_ms - 1000))
        job_id = job.job_id

        def finished() -> Job | None:
            current = self._job(job_id, caller)
            return current if current.status.terminal else None

        waited = max(0.0, budget_ms / 1000 - (time.monotonic() - started))
        done = poll(finished, waited, interval=0.1, growth=2, max_interval=1.0, sleep=self._sleep)
        if done is not None:
            return True, self._start_result(done, file_id, started)
        job = self._job(job_id, caller)
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
