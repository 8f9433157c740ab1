"""Webhook state on the job item: how long a claimed attempt counts as in flight, and the sweeper's list."""

from __future__ import annotations

from chalicelib.jobs.callbacks import CALLBACKS_PENDING, CallbackStore
from chalicelib.models import CallbackStatus


def put_pending(table, job_id: str, next_at: int, attempts: int = 0) -> None:
    """A job whose webhook is pending, as settling its end leaves it (endings.leave_ending)."""
    table.put_item(
        Item={
            "pk": f"JOB#{job_id}",
            "sk": "JOB",
            "jobId": job_id,
            "active": CALLBACKS_PENDING,
            "updatedAt": "2026-01-01T00:00:00Z",
            "callbackUrl": "https://example.com/hooks",
            "callbackStatus": CallbackStatus.PENDING.value,
            "callbackAttempts": attempts,
            "callbackEvent": '{"id":"evt_1","type":"job.completed"}',
            "callbackNextAt": next_at,
        }
    )


def test_an_attempt_claimed_late_counts_as_in_flight_until_it_could_have_finished(deployed, clock):
    callbacks = CallbackStore(deployed.table, clock=clock)
    now = int(clock().timestamp())
    put_pending(deployed.table, "late", next_at=now - 3600)  # due an hour ago: its message waited in a backlog

    assert callbacks.claim("late", 1, in_flight_seconds=30) is not None
    clock.advance(30)
    assert callbacks.overdue(grace_seconds=0) == []
    clock.advance(2)
    assert [overdue.job_id for overdue in callbacks.overdue(grace_seconds=0)] == ["late"]


def test_the_sweeper_reads_every_pending_callback_not_only_the_first_page(deployed, clock):
    callbacks = CallbackStore(deployed.table, clock=clock)
    for index in range(101):  # one more than a page
        put_pending(deployed.table, f"job-{index:03}", next_at=0)

    overdue = callbacks.overdue(grace_seconds=60)

    assert sorted(entry.job_id for entry in overdue) == [f"job-{index:03}" for index in range(101)]
