"""The worker under fair scheduling, driven through process_work on the moto stack: a job keeps
at most its window of files out, redeliveries and crashes neither lose nor double-count a file,
cancellation stops the releases, a failed step comes back after a short backoff."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

from app import process_work
from chalicelib import runtime
from chalicelib.aws.queue import SendFailed, WorkMessage
from chalicelib.models import InitiateRequest
from chalicelib.worker.processing import Worker
from tests.support.aws import delete_records, drain, put_source, queue_depth, receive_records

NO_FAILURES = {"batchItemFailures": []}


def with_window(deployed, consumer, window: int, **settings) -> Worker:
    """The worker process_work runs, with JOB_MAX_IN_FLIGHT = window."""
    changed = dataclasses.replace(deployed.settings, job_max_in_flight=window, **settings)
    worker = Worker(consumer.store, consumer.queue, consumer.storage, changed, jitter=lambda low, high: high)
    runtime.override(worker=worker)
    return worker


def deliver(*records: dict) -> dict:
    return process_work({"Records": list(records)}, None)


def waiting(deployed) -> list[tuple]:
    """(kind, fileId) of every message waiting, left waiting."""
    records = receive_records(deployed.queue_url)
    leave_waiting(deployed, records)
    return sorted((m.kind.value, m.file_id or 0) for m in (WorkMessage.from_body(r["body"]) for r in records))


def start(deployed, *file_ids: int) -> str:
    """Initiates a job and delivers its job message: the fan-out has run."""
    job, _ = runtime.service().initiate(InitiateRequest(file_ids))
    [job_record] = receive_records(deployed.queue_url)
    assert deliver(job_record) == NO_FAILURES
    delete_records(deployed.queue_url, [job_record])
    return job.job_id


def leave_waiting(deployed, records: list[dict]) -> None:
    for record in records:
        deployed.sqs.change_message_visibility(
            QueueUrl=deployed.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )


def fails(exc: Exception):
    def raising(*_args, **_kwargs):
        raise exc

    return raising


def take_file(deployed, file_id: int) -> dict:
    """Receives every waiting message and keeps the one for `file_id`; the rest stay waiting."""
    records = receive_records(deployed.queue_url)
    chosen = [r for r in records if WorkMessage.from_body(r["body"]).file_id == file_id]
    leave_waiting(deployed, [r for r in records if r not in chosen])
    [record] = chosen
    return record


def counted(deployed, job_id: str) -> int:
    return deployed.status(job_id)["completedFiles"]


FILES = tuple(range(70000, 70007))


def test_a_job_never_has_more_than_its_window_of_files_out_and_still_completes(deployed, consumer, monkeypatch):
    for file_id in FILES[::2]:
        put_source(deployed.bucket, file_id)
    with_window(deployed, consumer, 3)
    released: set[int] = set()
    send, send_many = consumer.queue.send, consumer.queue.send_many

    def noting(message):
        if message.file_id is not None:
            released.add(message.file_id)

    monkeypatch.setattr(consumer.queue, "send", lambda message: (noting(message), send(message)))
    monkeypatch.setattr(consumer.queue, "send_many", lambda messages: ([*map(noting, messages)], send_many(messages)))
    job_id = start(deployed, *FILES)
    most_out = 0

    for _ in range(50):  # bounded: one message per round, as one worker would take them
        most_out = max(most_out, len(released - set(consumer.store.file_results(job_id))))
        records = receive_records(deployed.queue_url, max_messages=1)
        if not records:
            break
        assert deliver(*records) == NO_FAILURES
        delete_records(deployed.queue_url, records)

    document = deployed.status(job_id)
    assert (document["status"], document["completedFiles"], document["availableFiles"]) == ("completed", 7, 4)
    assert most_out == 3
    assert consumer.bundle_builds == 1


def test_the_fan_out_releases_only_the_first_window(deployed, consumer):
    with_window(deployed, consumer, 3)

    job_id = start(deployed, *FILES)

    assert waiting(deployed) == [("file", 70000), ("file", 70001), ("file", 70002)]
    assert deployed.job_item(job_id)["window"] == 3


def test_a_counted_file_releases_the_file_one_window_further_on(deployed, consumer):
    with_window(deployed, consumer, 3)
    job_id = start(deployed, *FILES)
    record = take_file(deployed, 70001)

    assert deliver(record) == NO_FAILURES
    delete_records(deployed.queue_url, [record])

    assert waiting(deployed) == [("file", 70000), ("file", 70002), ("file", 70004)]
    assert counted(deployed, job_id) == 1


def test_a_redelivery_of_a_releasing_message_releases_again_and_a_copy_does_not(deployed, consumer):
    """The first receive counted the file and may have died before its send; a copy's original sends."""
    with_window(deployed, consumer, 3)
    job_id = start(deployed, *FILES)
    record = take_file(deployed, 70001)
    deliver(record)
    delete_records(deployed.queue_url, [record])

    redelivery = deliver({**record, "attributes": {"ApproximateReceiveCount": "2"}})
    copy = deliver({**record, "messageId": "copy-of-it"})

    assert (redelivery, copy) == (NO_FAILURES, NO_FAILURES)
    assert waiting(deployed) == [("file", 70000), ("file", 70002), ("file", 70004), ("file", 70004)]
    assert counted(deployed, job_id) == 1


def test_a_consumer_dying_between_count_and_release_loses_nothing(deployed, consumer, monkeypatch):
    put_source(deployed.bucket, 70000)
    with_window(deployed, consumer, 3)
    job_id = start(deployed, *FILES)
    record = take_file(deployed, 70001)
    send = consumer.queue.send
    monkeypatch.setattr(consumer.queue, "send", fails(SendFailed("the consumer died before its send")))

    assert deliver(record)["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
    monkeypatch.setattr(consumer.queue, "send", send)
    assert counted(deployed, job_id) == 1
    assert deliver({**record, "attributes": {"ApproximateReceiveCount": "2"}}) == NO_FAILURES
    delete_records(deployed.queue_url, [record])
    drain(process_work, deployed.queue_url)

    document = deployed.status(job_id)
    assert (document["status"], document["completedFiles"], document["availableFiles"]) == ("completed", 7, 1)


def test_a_job_cancelled_mid_window_releases_no_more_files(deployed, consumer):
    with_window(deployed, consumer, 3)
    job_id = start(deployed, *FILES)
    record = take_file(deployed, 70000)
    deliver(record)
    delete_records(deployed.queue_url, [record])

    runtime.service().cancel(job_id)
    drain(process_work, deployed.queue_url)

    document = deployed.status(job_id)
    assert (document["status"], document["completedFiles"]) == ("cancelled", 1)
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0
    assert consumer.bundle_builds == 0


def test_a_file_costs_four_aws_calls_on_its_first_receive(deployed, consumer):
    put_source(deployed.bucket, 70000)
    with_window(deployed, consumer, 3)
    start(deployed, *FILES)
    record = take_file(deployed, 70000)
    calls: Counter = Counter()
    for client in (consumer.store._client, consumer.queue._sqs, consumer.storage._s3):
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))

    assert deliver(record) == NO_FAILURES

    assert calls == Counter(GetItem=1, HeadObject=1, TransactWriteItems=1, SendMessage=1)


def test_a_failed_step_comes_back_after_a_short_backoff_not_the_visibility_timeout(deployed, consumer, monkeypatch):
    """The deployed queue's visibility timeout is 30 s; the first retry waits RETRY_BASE_SECONDS."""
    with_window(deployed, consumer, 3, retry_base_seconds=1, retry_max_seconds=60)
    job_id = start(deployed, *FILES)
    record = take_file(deployed, 70000)
    head = consumer.storage.readable_size
    monkeypatch.setattr(consumer.storage, "readable_size", fails(OSError("throttled")))
    failed_at = time.monotonic()

    assert deliver(record)["batchItemFailures"] == [{"itemIdentifier": record["messageId"]}]
    monkeypatch.setattr(consumer.storage, "readable_size", head)
    again: list[dict] = []
    while not again and time.monotonic() < failed_at + 10:  # poll with a deadline
        records = receive_records(deployed.queue_url)
        again = [r for r in records if r["messageId"] == record["messageId"]]
        leave_waiting(deployed, [r for r in records if r not in again])

    assert again and again[0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert time.monotonic() - failed_at < 5
    assert deliver(again[0]) == NO_FAILURES
    assert counted(deployed, job_id) == 1
