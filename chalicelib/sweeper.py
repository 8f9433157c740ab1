"""Finds jobs whose work went missing and resumes them, or fails them for good.

A job is stalled when it is not terminal and nothing has changed it for
STALLED_JOB_SECONDS (longer than the slowest file). While messages wait in
the work queue an idle job may simply be behind them, so the threshold grows
to BACKLOG_GRACE_FACTOR times that: a backlog delays the verdict but cannot
postpone it forever. Resuming re-sends the job message, whose fan-out only
re-sends the files released and still pending (at most the job's window:
scheduling.released_pending), or the bundle message; after
MAX_JOB_RESUMES it is failed, so no job waits forever.
"""

from __future__ import annotations

import logging

from chalicelib import scheduling
from chalicelib.config import Settings
from chalicelib.jobs import JobStore
from chalicelib.models import JobStatus
from chalicelib.queue import WorkQueue

log = logging.getLogger("delineate.sweeper")

# Resuming a job that is only queued behind a backlog doubles the backlog and,
# after MAX_JOB_RESUMES, fails a job that was merely waiting; never judging
# while a backlog lasts would leave lost work stuck under sustained load.
BACKLOG_GRACE_FACTOR = 4


class Sweeper:
    def __init__(self, store: JobStore, queue: WorkQueue, settings: Settings) -> None:
        self._store, self._queue, self._settings = store, queue, settings

    def sweep(self) -> dict[str, list[str]]:
        outcome: dict[str, list[str]] = {"resumed": [], "failed": []}
        idle = self._settings.stalled_job_seconds
        backlog = self._queue.waiting()
        if backlog:
            idle *= BACKLOG_GRACE_FACTOR
            log.info("work queue backlog: stall threshold raised", extra={"waiting": backlog, "idleSeconds": idle})
        for job_id in self._store.stalled_job_ids(idle):
            action = self.revive(job_id, idle)
            if action:
                outcome[action].append(job_id)
        if outcome["resumed"] or outcome["failed"]:
            log.warning("swept stalled jobs", extra=outcome)
        return outcome

    def revive(self, job_id: str, idle: int) -> str | None:
        job = self._store.get(job_id)
        if job is None or job.status.terminal:
            return None
        if job.resumes >= self._settings.max_job_resumes:
            reason = f"stalled: no progress for {idle}s after {job.resumes} resumes"
            return "failed" if self._store.fail(job_id, reason) else None
        if self._store.note_resume(job_id) is None:
            return None
        if job.status is JobStatus.PROCESSING and job.all_files_done:
            self._queue.send(scheduling.bundle_message(job))
        else:
            self._queue.send(scheduling.job_message(job))
        return "resumed"
