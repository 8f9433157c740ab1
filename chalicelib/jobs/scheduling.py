"""Fair scheduling: which of a job's files may wait to be started, and who releases the next.

A file's preparation is a wait, not work (worker/processing.py): starting a file
records when it is due and hands its message back delayed, so a job's files
wait side by side without holding a worker, and a job takes about one file's
delay plus its workers' own work however many files it has.

What a job must not do is put all its start messages in the one shared queue
at once: a small job would wait behind a 1,000-file fan-out. So a job keeps at
most a window W of file messages released and not yet started
(JOB_MAX_IN_FLIGHT, fixed on the job when its fan-out starts; by default the
worker concurrency, which alone keeps every worker busy): the fan-out releases
the files at positions 0..W-1 of its fileIds, and the file at position i, once
started, releases the one at i+W. A newcomer's first file then waits behind at
most W of a big job's start messages, about one start's work per worker, far
inside one file's delay. Waiting files are not in the window: a delayed message
is invisible, so it delays nobody.

The rule is by position, so it needs no counter and no extra write: each
started file releases exactly one successor, and at most W files are released
but not started at any time (one per position modulo W). Since any file may be
counted last, the count that finds every file counted asks for the bundle
(worker/processing.py reads the job after counting).

Delivery is at-least-once. The delivery that starts a file releases its
successor; a redelivery (receive count > 1) that finds the file started
releases it again, since its earlier receive may have died in between, and a
duplicate successor is harmless (starting is a conditional write). A first
receive that finds the file started is a copy whose original does the
releasing: it releases nothing, so copies cannot multiply down a job. A resume
re-sends the files released and neither counted nor still waiting
(`released_pending`), whatever was lost.
"""

from __future__ import annotations

from typing import Collection, Iterable, Mapping

from chalicelib.aws.queue import MessageKind, WorkMessage
from chalicelib.models import Job


def window(job: Job) -> int:
    """A job started before windows existed had every file sent at once: its window is all of them."""
    return job.window or job.total_files


def group(job: Job) -> str:
    """The SQS MessageGroupId of the job's messages: its owner once jobs have one, else the job.

    On a fair queue SQS serves quiet groups first when one group holds a
    disproportionate share of the messages in flight."""
    return group_for(job.job_id, job.owner)


def group_for(job_id: str, owner: str | None) -> str:
    """`group` for a caller holding the job's id and owner rather than the job (webhook attempts)."""
    return owner or job_id


def job_message(job: Job) -> WorkMessage:
    return WorkMessage(MessageKind.JOB, job.job_id, group=group(job))


def bundle_message(job: Job) -> WorkMessage:
    return WorkMessage(MessageKind.BUNDLE, job.job_id, group=group(job))


def file_messages(job: Job, file_ids: Iterable[int]) -> list[WorkMessage]:
    return [WorkMessage(MessageKind.FILE, job.job_id, file_id, group=group(job)) for file_id in file_ids]


def due_message(job: Job, file_id: int, ready_at: float, delay_seconds: int) -> WorkMessage:
    """The started file's message again, kept invisible `delay_seconds`, carrying when it is due and
    the job's size (what counting it without reading the job needs: worker/processing.py)."""
    return WorkMessage(
        MessageKind.FILE,
        job.job_id,
        file_id,
        group=group(job),
        ready_at=ready_at,
        total_files=job.total_files,
        delay_seconds=delay_seconds,
    )


def first_released(job: Job) -> list[int]:
    """What the fan-out of a job that just started sends."""
    return list(job.file_ids[: window(job)])


def released_by(job: Job, file_id: int) -> WorkMessage | None:
    """What starting `file_id` releases: the file one window further on, if there is one."""
    successor = job.file_ids.index(file_id) + window(job)
    if successor < job.total_files:
        return file_messages(job, [job.file_ids[successor]])[0]
    return None


def released_pending(job: Job, counted: Collection[int], waits: Mapping[int, float], now: float) -> list[int]:
    """Files released (in the first window, started, or their predecessor started) that are neither counted
    nor waiting for a due time still ahead: what a resume re-sends. A file past its due time is
    among them; its start message finds it started and counts it, without preparing it again.

    Empty only when every file is counted or waiting: the first file in neither is either in the
    first window or one window after a started file."""
    size = window(job)

    def started(file_id: int) -> bool:
        return file_id in counted or file_id in waits

    return [
        file_id
        for position, file_id in enumerate(job.file_ids)
        if file_id not in counted
        and waits.get(file_id, now) <= now
        and (position < size or file_id in waits or started(job.file_ids[position - size]))
    ]
