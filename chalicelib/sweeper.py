"""Finds jobs whose work went missing and resumes them, or fails them for good.

A job is stalled when it is not terminal and nothing has changed it for
STALLED_JOB_SECONDS (longer than the slowest file) and no messages wait in
the work queue (a backlog explains idleness; a drained queue does not). Resuming re-sends the job
message, whose fan-out only re-sends the files still pending, or the bundle
message; after MAX_JOB_RESUMES it is failed, so no job waits forever.
"""

from __future__ import annotations

import logging

from chalicelib.config import Settings
from chalicelib.jobs import JobStore
from chalicelib.models import JobStatus
from chalicelib.queue import MessageKind, WorkMessage, WorkQueue

log = logging.getLogger("delineate.sweeper")


class Sweeper:
    def __init__(self, store: JobStore, queue: WorkQueue, settings: Settings) -> None:
        self._store, self._queue, self._settings = store, queue, settings

    def sweep(self) -> dict:
        outcome = {"resumed": [], "failed": []}
        # While messages wait in the queue, an idle job may simply be behind
        # them: resuming would double the backlog and, after MAX_JOB_RESUMES,
        # fail jobs that were only waiting. Lost work is judged once it drains.
        backlog = self._queue.waiting()
        if backlog:
            log.info("sweep deferred: work queue backlog", extra={"waiting": backlog})
            return outcome
        for job_id in self._store.stalled_job_ids(self._settings.stalled_job_seconds):
            action = self.revive(job_id)
            if action:
                outcome[action].append(job_id)
        if outcome["resumed"] or outcome["failed"]:
            log.warning("swept stalled jobs", extra=outcome)
        return outcome

    def revive(self, job_id: str) -> str | None:
        job = self._store.get(job_id)
        if job is None or job.status.terminal:
            return None
        if job.resumes >= self._settings.max_job_resumes:
            idle = self._settings.stalled_job_seconds
            reason = f"stalled: no progress for {idle}s after {job.resumes} resumes"
            return "failed" if self._store.fail(job_id, reason) else None
        if self._store.note_resume(job_id) is None:
            return None
        if job.status is JobStatus.PROCESSING and job.all_files_done:
            self._queue.send(WorkMessage(MessageKind.BUNDLE, job_id))
        else:
            self._queue.send(WorkMessage(MessageKind.JOB, job_id))
        return "resumed"
