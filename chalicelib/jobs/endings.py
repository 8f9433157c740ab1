"""What follows a job's end, done exactly once even when the process that ended it dies.

A terminal transition does not take the job out of the active-jobs index: it
moves it to the index's `ending` partition. One later write, conditioned on
the job still being there, takes it out and carries what must happen once per
job: its owner's active count drops (owners.py), and a job with a
callbackUrl gets its webhook pending, with the event every attempt will send
(callbacks.py), which moves it to the `callbacks` partition instead. Whoever
ended the job settles it right away; if that process dies first, the sweeper
finds the job in `ending` and settles it. So neither is lost, and neither
happens twice: the condition lets one settle through. That write also records
the job's outcome and duration as metrics, so each job is counted once.

  pk=JOB#<id>  active=ending#NN   ended, not yet settled (NN: the job's shard, items.py;
                                  `ending` alone for jobs that ended before the shards)
               active=callbacks   settled, webhook pending (callbacks.py)
               (no active)        settled
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import metrics
from chalicelib.jobs.callbacks import CALLBACKS_PENDING
from chalicelib.jobs.items import ENDING, ending_value, job_key
from chalicelib.metrics import Metric
from chalicelib.models import CallbackStatus, Job, JobStatus


def leave_ending(job_id: str, callback_event: bytes | None, now: datetime) -> dict[str, Any]:
    """UpdateItem arguments taking the ended job out of `ending`, once; with `callback_event`, its
    webhook becomes pending (and the job moves to the `callbacks` partition). The job's owner, if any,
    is released in the same transaction (owners.release_item)."""
    values: dict[str, Any] = {":ending": ending_value(job_id), ":unsharded": ENDING}
    if callback_event is None:
        expression = "REMOVE active"
    else:
        expression = (
            "SET callbackStatus = :pending, callbackAttempts = :zero, callbackEvent = :event, "
            "callbackNextAt = :now, active = :callbacks"
        )
        values.update(
            {
                ":pending": CallbackStatus.PENDING.value,
                ":zero": 0,
                ":event": callback_event.decode("ascii"),
                ":now": int(now.timestamp()),
                ":callbacks": CALLBACKS_PENDING,
            }
        )
    return {
        "Key": job_key(job_id),
        "UpdateExpression": expression,
        "ConditionExpression": "active IN (:ending, :unsharded)",
        "ExpressionAttributeValues": values,
    }


_ENDED = {
    JobStatus.COMPLETED: Metric.JOBS_COMPLETED,
    JobStatus.FAILED: Metric.JOBS_FAILED,
    JobStatus.CANCELLED: Metric.JOBS_CANCELLED,
}


def recorded(job: Job, now: datetime) -> None:
    """A job's outcome and duration, recorded by the one write that settles its end (so once)."""
    outcome = _ENDED.get(job.status)
    if outcome is not None:
        metrics.record(outcome)
        metrics.record(Metric.JOB_DURATION_SECONDS, max(0.0, (now - job.created_at).total_seconds()))


def file_recorded(available: int) -> None:
    """A file counted (once, by the write that counted it): prepared, or failed when it was not available."""
    metrics.record(Metric.FILES_PREPARED if available else Metric.FILES_FAILED)
