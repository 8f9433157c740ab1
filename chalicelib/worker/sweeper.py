"""Finds jobs whose work went missing and resumes them, or fails them for good.

A job is stalled when it is not terminal and nothing has changed it for
STALLED_JOB_SECONDS (longer than the slowest file). While messages wait in
the work queue an idle job may simply be behind them, so the threshold grows
to BACKLOG_GRACE_FACTOR times that: a backlog delays the verdict but cannot
postpone it forever. Resuming re-sends the job message, whose fan-out only
re-sends the files released and still pending (at most the job's window:
scheduling.released_pending), or the bundle message; after
MAX_JOB_RESUMES it is failed, so no job waits forever. A job still active
past its TTL (JOB_TTL_SECONDS from creation: the longest a job may run) is
failed at once. Every write is conditioned on the job being as the sweeper
read it (jobs/sweeps.py), and one job's error does not stop the sweep. An
ended job whose ender died before settling it (its owner's count, its webhook:
jobs/endings.py) is settled here.
"""

from __future__ import annotations

import logging

from chalicelib.aws.queue import WorkMessage, WorkQueue
from chalicelib.config import Settings
from chalicelib.jobs import scheduling
from chalicelib.jobs.sweeps import SweepingJobStore
from chalicelib.models import Job, JobStatus
from chalicelib.webhooks.delivery import Webhooks

log = logging.getLogger("delineate.sweeper")

# Resuming a job that is only queued behind a backlog doubles the backlog and,
# after MAX_JOB_RESUMES, fails a job that was merely waiting; never judging
# while a backlog lasts would leave lost work stuck under sustained load.
BACKLOG_GRACE_FACTOR = 4


class Sweeper:
    def __init__(
        self, store: SweepingJobStore, queue: WorkQueue, settings: Settings, webhooks: Webhooks | None = None
    ) -> None:
        self._store, self._queue, self._settings = store, queue, settings
        self._webhooks = webhooks

    def sweep(self) -> dict[str, list[str]]:
        outcome: dict[str, list[str]] = {"resumed": [], "failed": []}
        idle = self._settings.stalled_job_seconds
        backlog = self._queue.waiting()
        if backlog:
            idle *= BACKLOG_GRACE_FACTOR
            log.info("work queue backlog: stall threshold raised", extra={"waiting": backlog, "idleSeconds": idle})
        for job_id in self._store.stalled_job_ids(idle):
            try:
                action = self.revive(job_id, idle)
            except Exception:  # one job's trouble must not leave the jobs after it unswept
                log.exception("could not sweep a job", extra={"jobId": job_id})
                continue
            if action:
                outcome[action].append(job_id)
        settled = self._settle_ended(self._settings.stalled_job_seconds)
        if settled:  # ended jobs whose ender died before settling them
            outcome["settled"] = settled
        resent = self._webhooks.resend_overdue(self._settings.stalled_job_seconds) if self._webhooks else []
        if resent:  # pending webhooks whose message was lost, sent again
            outcome["webhooksResent"] = resent
        if outcome["resumed"] or outcome["failed"] or settled:
            log.warning("swept stalled jobs", extra=outcome)
        return outcome

    def _settle_ended(self, grace_seconds: int) -> list[str]:
        """Ended jobs left in `ending` for longer than a settle takes: settled here (jobs/endings.py)."""
        settled = []
        for job_id in self._store.unsettled_job_ids(grace_seconds):
            try:
                job = self._store.get(job_id)
                if job is None:
                    continue
                done = self._store.settle_ended(job)
            except Exception:  # one job's trouble must not leave the jobs after it unsettled
                log.exception("could not settle a job", extra={"jobId": job_id})
                continue
            if done:
                settled.append(job_id)
        return settled

    def revive(self, job_id: str, idle: int) -> str | None:
        job = self._store.read_stalled(job_id, idle)
        if job is None:  # gone, ended, or moved since the index listed it
            return None
        if self._store.past_ttl(job):
            reason = f"did not finish within {_duration(self._settings.job_ttl_seconds)}"
            return "failed" if self._store.fail_unchanged(job, reason) else None
        if job.resumes >= self._settings.max_job_resumes:
            reason = f"stalled: no progress for {idle}s after {job.resumes} resumes"
            return "failed" if self._store.fail_unchanged(job, reason) else None
        if self._store.note_resume(job) is None:
            return None
        self._queue.send(_resume_message(job))
        return "resumed"


def _resume_message(job: Job) -> WorkMessage:
    if job.status is JobStatus.PROCESSING and job.all_files_done:
        return scheduling.bundle_message(job)
    return scheduling.job_message(job)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{seconds}s"
