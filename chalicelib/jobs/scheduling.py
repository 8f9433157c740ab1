"""Fair scheduling: which of a job's files may be queued or in flight, and who releases the next.

One work queue serves every job, so a job that sent all its file messages at
once would put a small job behind its whole fan-out. Instead a job keeps at
most a window W of file messages out (JOB_MAX_IN_FLIGHT, fixed on the job when
its fan-out starts): the fan-out releases the files at positions 0..W-1 of its
fileIds, and the file at position i, once counted, releases the one at i+W.

The rule is by position, so it needs no counter and no extra write: each
counted file releases exactly one successor, and at most W files are released
but not counted at any time (one per position modulo W). A file with no
successor (i+W >= N, a tail file) asks for the bundle instead. The last file
counted is always a tail file, because every later position starts only after
an earlier one is counted; so the bundle message that finds every file counted
always follows the last count.

Delivery is at-least-once. The delivery that counts a file releases its
successor; a redelivery (receive count > 1) that finds the file counted
releases it again, since its earlier receive may have died in between, and a
duplicate successor is harmless (counting is idempotent). A first receive that
finds the file counted is a copy whose original does the releasing: it
releases nothing, so copies cannot multiply down a job. A resume re-sends the
files released and not counted (`released_pending`), whatever was lost.
"""

from __future__ import annotations

from typing import Collection, Iterable

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


def first_released(job: Job) -> list[int]:
    """What the fan-out of a job that just started sends."""
    return list(job.file_ids[: window(job)])


def released_by(job: Job, file_id: int) -> WorkMessage:
    """What counting `file_id` releases: the file one window further on, or, for a tail file, the bundle."""
    successor = job.file_ids.index(file_id) + window(job)
    if successor < job.total_files:
        return file_messages(job, [job.file_ids[successor]])[0]
    return bundle_message(job)


def released_pending(job: Job, counted: Collection[int]) -> list[int]:
    """Files released (in the first window, or their predecessor counted) and not counted: at most W.

    Empty only when every file is counted: the first uncounted position is
    either in the first window or one window after a counted file."""
    size = window(job)
    return [
        file_id
        for position, file_id in enumerate(job.file_ids)
        if file_id not in counted and (position < size or job.file_ids[position - size] in counted)
    ]
