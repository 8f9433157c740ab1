"""The sweeper: no job stays queued or processing forever; a stalled one is resumed, then failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from app import process_work, sweep_stalled_jobs
from chalicelib import runtime
from chalicelib.aws.queue import MessageKind, WorkMessage, WorkQueue
from chalicelib.jobs.sweeps import SweepingJobStore
from chalicelib.models import FileResult, FileStatus, InitiateRequest, iso
from chalicelib.worker.sweeper import BACKLOG_GRACE_FACTOR, Sweeper
from tests.support.aws import delete_records, drain, put_source, queue_depth, receive_records


@pytest.fixture
def later(deployed, clock):
    """A sweeper whose clock the test moves: 'idle for STALLED_JOB_SECONDS' without waiting."""
    store = SweepingJobStore(deployed.table, deployed.settings.job_ttl_seconds, clock=clock)
    return Sweeper(store, WorkQueue(deployed.sqs, deployed.queue_url), deployed.settings)


def go_idle(clock, settings) -> None:
    """Past the stall threshold by a margin: jobs are stamped by the real clock,
    which runs ahead of the test's clock by the time the test's setup took."""
    clock.advance(settings.stalled_job_seconds + 60)


def lose_queued_messages(deployed) -> list[dict]:
    """The work that went missing: a crash between write and send, a purge, a bad deploy."""
    records = receive_records(deployed.queue_url)
    delete_records(deployed.queue_url, records)
    return records


def initiate(*file_ids: int) -> str:
    job, _ = runtime.service().initiate(InitiateRequest(file_ids))
    return job.job_id


def kinds_waiting(deployed) -> list[tuple]:
    records = receive_records(deployed.queue_url)
    for record in records:  # leave them for the next receive
        deployed.sqs.change_message_visibility(
            QueueUrl=deployed.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )
    return [(WorkMessage.from_body(r["body"]).kind, WorkMessage.from_body(r["body"]).job_id) for r in records]


def test_queued_job_whose_message_was_lost_is_resumed_and_then_completes(deployed, consumer, clock, later):
    put_source(deployed.bucket, 70000)
    job_id = initiate(70000, 70003)
    lose_queued_messages(deployed)
    go_idle(clock, deployed.settings)

    outcome = later.sweep()

    assert outcome == {"resumed": [job_id], "failed": []}
    assert kinds_waiting(deployed) == [(MessageKind.JOB, job_id)]
    drain(process_work, deployed.queue_url)
    document = deployed.status(job_id)
    assert (document["status"], document["completedFiles"], document["availableFiles"]) == ("completed", 2, 1)


def test_processing_job_whose_bundle_message_was_lost_is_resumed_with_a_bundle_message(
    deployed, consumer, clock, later
):
    source = put_source(deployed.bucket, 70000)
    job = deployed.create_job(70000, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, len(source)))
    go_idle(clock, deployed.settings)

    later.sweep()

    assert kinds_waiting(deployed) == [(MessageKind.BUNDLE, job.job_id)]
    drain(process_work, deployed.queue_url)
    assert deployed.status(job.job_id)["status"] == "completed"


def test_a_resumed_job_resends_only_the_files_its_window_had_released_and_then_completes(
    deployed, consumer, clock, later
):
    """Window 2 over five files: 70000 counted (so 70002 was released), 70001 lost in flight."""
    job = deployed.create_job(70000, 70001, 70002, 70003, 70004)
    assert consumer.store.start_processing(job.job_id, window=2)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.UNAVAILABLE))
    go_idle(clock, deployed.settings)

    later.sweep()
    [job_message] = receive_records(deployed.queue_url)
    process_work({"Records": [job_message]}, None)
    delete_records(deployed.queue_url, [job_message])

    resent = sorted(WorkMessage.from_body(r["body"]).file_id for r in receive_records(deployed.queue_url))
    assert resent == [70001, 70002]


def test_a_job_resumed_under_a_window_completes(deployed, consumer, clock, later):
    job = deployed.create_job(70000, 70001, 70002, 70003, 70004)
    assert consumer.store.start_processing(job.job_id, window=2)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.UNAVAILABLE))
    go_idle(clock, deployed.settings)

    later.sweep()
    drain(process_work, deployed.queue_url)

    document = deployed.status(job.job_id)
    assert (document["status"], document["completedFiles"]) == ("completed", 5)


def test_job_still_stalled_after_max_resumes_is_failed_with_a_reason(deployed, clock, later):
    job_id = initiate(70000)
    settings = deployed.settings
    outcomes = []

    for _ in range(settings.max_job_resumes + 1):
        lose_queued_messages(deployed)
        go_idle(clock, settings)
        outcomes.append(later.sweep())

    document = deployed.status(job_id)
    assert settings.max_job_resumes == 3
    assert outcomes == [{"resumed": [job_id], "failed": []}] * 3 + [{"resumed": [], "failed": [job_id]}]
    assert document["status"] == "failed"
    assert document["error"] == "stalled: no progress for 900s after 3 resumes"
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0


def test_fresh_and_finished_jobs_are_left_alone(deployed, consumer, clock, later):
    finished = initiate(70003)
    drain(process_work, deployed.queue_url)
    go_idle(clock, deployed.settings)
    fresh, _ = later._store.create(InitiateRequest((70000,)))
    lose_queued_messages(deployed)

    outcome = later.sweep()

    assert outcome == {"resumed": [], "failed": []}
    assert deployed.status(finished)["status"] == "completed"
    assert deployed.status(fresh.job_id)["status"] == "queued"
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0


def test_job_cancelled_while_being_swept_is_left_alone_and_the_sweep_goes_on(deployed, clock, later, monkeypatch):
    cancelled_meanwhile = initiate(70000)
    other = initiate(70001)
    lose_queued_messages(deployed)
    go_idle(clock, deployed.settings)
    read = later._store.read_stalled

    def read_then_lose_a_race(job_id, idle):
        job = read(job_id, idle)
        if job_id == cancelled_meanwhile:  # a client cancels between the sweeper's read and its write
            runtime.service().cancel(job_id)
        return job

    monkeypatch.setattr(later._store, "read_stalled", read_then_lose_a_race)

    outcome = later.sweep()

    assert outcome == {"resumed": [other], "failed": []}
    assert deployed.status(cancelled_meanwhile)["status"] == "cancelled"
    assert kinds_waiting(deployed) == [(MessageKind.JOB, other)]


def test_scheduled_handler_sweeps_with_the_configured_threshold(deployed, monkeypatch):
    monkeypatch.setenv("STALLED_JOB_SECONDS", "0")
    runtime.reset()
    job_id = initiate(70000)
    lose_queued_messages(deployed)
    deployed.table.update_item(  # last touched a minute ago
        Key={"pk": f"JOB#{job_id}", "sk": "JOB"},
        UpdateExpression="SET updatedAt = :then",
        ExpressionAttributeValues={":then": "2000-01-01T00:00:00Z"},
    )

    outcome = sweep_stalled_jobs(
        {
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "detail": {},
            "time": "2026-01-01T00:00:00Z",
            "resources": [],
            "region": "us-east-1",
            "account": "123456789012",
            "id": "e",
            "version": "0",
        },
        None,
    )

    assert outcome == {"resumed": [job_id], "failed": []}
    assert kinds_waiting(deployed) == [(MessageKind.JOB, job_id)]


def test_jobs_behind_a_backlog_are_not_resumed_until_it_drains(deployed, clock, later):
    waiting = initiate(70000)  # its message is still in the queue, just not received yet
    go_idle(clock, deployed.settings)

    deferred = later.sweep()
    lost = lose_queued_messages(deployed)
    after_drain = later.sweep()

    assert deferred == {"resumed": [], "failed": []}
    assert [WorkMessage.from_body(record["body"]).job_id for record in lost] == [waiting]
    assert after_drain == {"resumed": [waiting], "failed": []}


def test_a_job_whose_file_waits_for_a_due_time_is_not_stalled_however_long_it_waits(deployed, clock, later):
    """Delayed messages are waits, not a backlog: the file's due time, not the idle time, decides."""
    job = deployed.create_job(70000, 70001, processing=True)
    deployed.store(clock).record_file(job.job_id, FileResult(70001, FileStatus.UNAVAILABLE))
    idle = deployed.settings.stalled_job_seconds
    ready_at = clock.now.timestamp() + 3 * idle  # a delay three times the stall threshold
    deployed.store(clock).waits.start(job.job_id, 70000, ready_at)

    clock.advance(3 * idle)
    while_waiting = later.sweep()
    clock.advance(idle - 60)
    just_due = later.sweep()
    clock.advance(120)
    overdue = later.sweep()

    assert while_waiting == just_due == {"resumed": [], "failed": []}
    assert overdue == {"resumed": [job.job_id], "failed": []}  # its due message went missing


def test_a_backlog_that_never_drains_only_delays_the_verdict(deployed, clock, later):
    lost = initiate(70000)
    lose_queued_messages(deployed)
    deployed.sqs.send_message(
        QueueUrl=deployed.queue_url,  # someone else's work, never drained
        MessageBody=WorkMessage(MessageKind.JOB, "0" * 32).to_body(),
    )
    settings = deployed.settings

    clock.advance(settings.stalled_job_seconds * BACKLOG_GRACE_FACTOR - 60)
    before_grace = later.sweep()
    clock.advance(120)
    after_grace = later.sweep()

    assert before_grace == {"resumed": [], "failed": []}
    assert after_grace == {"resumed": [lost], "failed": []}
    assert sorted(job for _, job in kinds_waiting(deployed)) == sorted(["0" * 32, lost])


def test_a_backlog_never_fails_a_job_and_its_resumes_spend_none_of_its_budget(deployed, clock, later):
    lost = initiate(70000)
    lose_queued_messages(deployed)
    deployed.sqs.send_message(QueueUrl=deployed.queue_url, MessageBody=WorkMessage(MessageKind.JOB, "0" * 32).to_body())
    settings = deployed.settings
    deployed.table.update_item(
        Key={"pk": f"JOB#{lost}", "sk": "JOB"},
        UpdateExpression="SET resumes = :max",
        ExpressionAttributeValues={":max": settings.max_job_resumes},
    )

    clock.advance(settings.stalled_job_seconds * BACKLOG_GRACE_FACTOR + 60)
    behind_backlog = later.sweep()
    lose_queued_messages(deployed)  # the backlog drains; the resumed work is lost again
    clock.advance(settings.stalled_job_seconds + 60)
    without_backlog = later.sweep()

    assert behind_backlog == {"resumed": [lost], "failed": []}
    assert without_backlog == {"resumed": [], "failed": [lost]}
    assert deployed.status(lost)["error"] == "stalled: no progress for 900s after 3 resumes"


def test_expired_active_jobs_are_failed_and_cannot_hide_a_live_stalled_one(deployed, clock, later):
    ttl = deployed.settings.job_ttl_seconds
    long_ago = SweepingJobStore(deployed.table, ttl, clock=lambda: clock.now - timedelta(seconds=ttl + 3600))
    expired = [long_ago.create(InitiateRequest((70000,)))[0].job_id for _ in range(100)]
    live = initiate(70001)
    lose_queued_messages(deployed)
    go_idle(clock, deployed.settings)

    outcome = later.sweep()

    assert outcome["resumed"] == [live]
    assert sorted(outcome["failed"]) == sorted(expired)
    assert {deployed.status(job_id)["error"] for job_id in expired} == {"did not finish within 24 hours"}
    every_active_entry = later._store.stalled_job_ids(idle_seconds=-86400)
    assert every_active_entry == [live]


def test_a_duplicate_scheduled_event_resumes_a_job_once(deployed, clock, later, monkeypatch):
    job_id = initiate(70000)
    lose_queued_messages(deployed)
    go_idle(clock, deployed.settings)
    read = later._store.read_stalled
    snapshot = read(job_id, deployed.settings.stalled_job_seconds)
    monkeypatch.setattr(later._store, "read_stalled", lambda *_: snapshot)  # both read before either wrote

    outcomes = [later.sweep(), later.sweep()]

    assert outcomes == [{"resumed": [job_id], "failed": []}, {"resumed": [], "failed": []}]
    assert kinds_waiting(deployed) == [(MessageKind.JOB, job_id)]


def test_a_job_that_progressed_behind_a_lagging_index_is_neither_resumed_nor_failed(deployed, clock, later):
    job = deployed.create_job(70000, 70001, processing=True)
    go_idle(clock, deployed.settings)
    listed = later._store.stalled_job_ids(deployed.settings.stalled_job_seconds)
    deployed.table.update_item(  # progress the index has not caught up with
        Key={"pk": f"JOB#{job.job_id}", "sk": "JOB"},
        UpdateExpression="SET updatedAt = :now, resumes = :max",
        ExpressionAttributeValues={":now": iso(clock.now), ":max": deployed.settings.max_job_resumes},
    )
    later._store.stalled_job_ids = lambda idle: listed

    assert later.sweep() == {"resumed": [], "failed": []}
    assert deployed.status(job.job_id)["status"] == "processing"
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0


def test_one_jobs_error_is_logged_and_the_sweep_goes_on(deployed, clock, later, monkeypatch, caplog):
    broken, healthy = initiate(70000), initiate(70001)
    lose_queued_messages(deployed)
    go_idle(clock, deployed.settings)
    read = later._store.read_stalled

    def read_failing_for_one(job_id, idle):
        if job_id == broken:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "GetItem")
        return read(job_id, idle)

    monkeypatch.setattr(later._store, "read_stalled", read_failing_for_one)

    outcome = later.sweep()

    assert outcome == {"resumed": [healthy], "failed": []}
    assert any(record.message == "could not sweep a job" and record.jobId == broken for record in caplog.records)
