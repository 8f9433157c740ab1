"""A file's wait holds no worker: the start message records when the file is due and comes back
delayed (SQS DelaySeconds, chained past 900 s); the due message counts it. Copies, redeliveries and
resumes never prepare a file twice; a cancelled job's due files are dropped; the last count, in
whatever order the files come due, asks for the bundle."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from chalicelib.aws.queue import MessageKind, WorkMessage
from chalicelib.aws.storage import SourceUnreadable
from chalicelib.models import FileResult, FileStatus
from chalicelib.worker.processing import Worker
from tests.support.aws import put_source, sqs_record

FILES = (70000, 70001, 70002, 70003)
T0 = 1_800_000_000.0


class Sent(list):
    """What the worker handed to SQS, in order, with each message's DelaySeconds."""

    def of(self, kind: MessageKind) -> list[WorkMessage]:
        return [message for message in self if message.kind is kind]


@pytest.fixture
def now() -> list[float]:
    return [T0]


@pytest.fixture
def sent(consumer, monkeypatch) -> Sent:
    captured = Sent()
    monkeypatch.setattr(consumer.queue, "send", lambda message, delay_seconds=0: captured.append(message))
    monkeypatch.setattr(consumer.queue, "send_many", lambda messages: captured.extend(messages))
    return captured


def waiting_worker(deployed, consumer, now, delay_s: float, window: int = 2) -> Worker:
    settings = dataclasses.replace(
        deployed.settings,
        delay_enabled=True,
        delay_min_ms=int(delay_s * 1000),
        delay_max_ms=int(delay_s * 1000),
        job_max_in_flight=window,
    )
    return Worker(consumer.store, consumer.queue, consumer.storage, settings, clock=lambda: now[0])


def started_job(deployed, consumer, *file_ids: int, window: int = 2):
    job = deployed.create_job(*file_ids)
    assert consumer.store.start_processing(job.job_id, window)
    return consumer.store.get(job.job_id)


def start_record(job_id: str, file_id: int, receives: int = 1) -> dict:
    return sqs_record(WorkMessage(MessageKind.FILE, job_id, file_id).to_body(), receive_count=receives)


def as_record(message: WorkMessage, receives: int = 1) -> dict:
    return sqs_record(message.to_body(), receive_count=receives)


def test_a_started_file_holds_no_worker_and_is_counted_when_its_due_message_comes_back(deployed, consumer, now, sent):
    put_source(deployed.bucket, 70000)
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)

    worker.handle_record(start_record(job.job_id, 70000))

    successor, due = sent
    assert (successor.kind, successor.file_id, successor.delay_seconds) == (MessageKind.FILE, 70002, 0)
    assert (due.file_id, due.ready_at, due.delay_seconds) == (70000, T0 + 30, 30)
    assert consumer.store.waits.due_times(job.job_id) == {70000: T0 + 30}
    assert deployed.status(job.job_id)["completedFiles"] == 0

    now[0] = T0 + 30
    worker.handle_record(as_record(due))

    document = deployed.status(job.job_id)
    assert (document["completedFiles"], document["availableFiles"]) == (1, 1)


def test_a_fractional_delay_is_rounded_up_to_whole_seconds_never_counting_early(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=2.4)
    job = started_job(deployed, consumer, *FILES)

    worker.handle_record(start_record(job.job_id, 70000))

    assert sent.of(MessageKind.FILE)[-1].delay_seconds == 3


def test_a_wait_longer_than_sqs_can_delay_a_message_is_a_chain_of_delays(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=2000, window=4)
    job = started_job(deployed, consumer, *FILES, window=4)

    worker.handle_record(start_record(job.job_id, 70000))
    for moment in (T0 + 900, T0 + 1800):
        now[0] = moment
        worker.handle_record(as_record(sent[-1]))
    now[0] = T0 + 2000
    worker.handle_record(as_record(sent[-1]))

    assert [message.delay_seconds for message in sent] == [900, 900, 200]
    assert {message.ready_at for message in sent} == {T0 + 2000}
    assert deployed.status(job.job_id)["completedFiles"] == 1


def test_a_copy_of_a_started_file_is_never_prepared_again(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    worker.handle_record(start_record(job.job_id, 70000))
    first = list(sent)
    sent.clear()

    now[0] = T0 + 10
    worker.handle_record(start_record(job.job_id, 70000))  # a copy (a resume, a duplicate send)
    copy_sent = list(sent)
    worker.handle_record(start_record(job.job_id, 70000, receives=2))  # its first receive died mid-way
    redelivery_sent = list(sent)

    assert copy_sent == []
    assert [(m.file_id, m.ready_at) for m in redelivery_sent] == [(m.file_id, m.ready_at) for m in first]
    assert redelivery_sent[-1].delay_seconds == 20  # the same due time, not a new delay
    assert consumer.store.waits.due_times(job.job_id) == {70000: T0 + 30}


def test_a_copy_arriving_after_the_due_time_counts_the_file_without_preparing_it_again(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    worker.handle_record(start_record(job.job_id, 70000))
    sent.clear()

    now[0] = T0 + 31
    worker.handle_record(start_record(job.job_id, 70000))  # resumed by the sweeper: the due message was lost

    assert sent == []  # no new wait, no second release
    assert consumer.store.waits.due_times(job.job_id) == {70000: T0 + 30}
    assert deployed.status(job.job_id)["completedFiles"] == 1


def test_a_due_file_of_a_cancelled_job_is_dropped_uncounted(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    worker.handle_record(start_record(job.job_id, 70000))
    due = sent[-1]
    sent.clear()
    assert consumer.store.cancel(job.job_id)

    now[0] = T0 + 30
    worker.handle_record(as_record(due))

    assert sent == []
    assert deployed.status(job.job_id)["completedFiles"] == 0


@pytest.mark.parametrize("last", FILES)
def test_the_last_count_asks_for_the_bundle_whichever_file_comes_due_last(deployed, consumer, now, sent, last):
    worker = waiting_worker(deployed, consumer, now, delay_s=30, window=4)
    job = started_job(deployed, consumer, *FILES, window=4)
    for file_id in FILES:
        worker.handle_record(start_record(job.job_id, file_id))
    due = {message.file_id: message for message in sent.of(MessageKind.FILE)}
    sent.clear()
    now[0] = T0 + 30
    bundle_asked_after: list[int] = []

    for file_id in [f for f in FILES if f != last] + [last]:
        worker.handle_record(as_record(due[file_id]))
        bundle_asked_after.extend(file_id for _ in sent.of(MessageKind.BUNDLE))
        sent.clear()

    assert bundle_asked_after == [last]


def test_a_redelivered_due_message_finding_the_file_counted_still_asks_for_the_bundle(deployed, consumer, now, sent):
    """Its first receive counted the last file and died before asking."""
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, 70000)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.UNAVAILABLE))
    due = WorkMessage(MessageKind.FILE, job.job_id, 70000, ready_at=T0)

    worker.handle_record(as_record(due, receives=1))
    copy_sent = list(sent)
    worker.handle_record(as_record(due, receives=2))

    assert copy_sent == []
    assert [message.kind for message in sent] == [MessageKind.BUNDLE]


def test_a_file_costs_three_aws_calls_to_start_and_two_to_count(deployed, consumer, now):
    put_source(deployed.bucket, 70000)
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    calls: Counter = Counter()
    for client in (consumer.store._client, consumer.queue._sqs, consumer.storage._s3):
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))

    worker.handle_record(start_record(job.job_id, 70000))
    to_start = Counter(calls)
    calls.clear()
    now[0] = T0 + 30
    due = WorkMessage(MessageKind.FILE, job.job_id, 70000, ready_at=T0 + 30, total_files=len(FILES))
    worker.handle_record(as_record(due))

    assert to_start == Counter(GetItem=1, PutItem=1, SendMessageBatch=1)
    assert calls == Counter(HeadObject=1, TransactWriteItems=1)  # no job read: files are left to count


def test_only_the_count_that_completes_the_job_reads_it(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, 70000, 70001)
    for file_id in (70000, 70001):
        worker.handle_record(start_record(job.job_id, file_id))
    due = {message.file_id: message for message in sent.of(MessageKind.FILE) if message.ready_at}
    now[0] = T0 + 30
    reads: list[str] = []
    consumer.store._client.meta.events.register("before-call", lambda model, **_: reads.append(model.name))

    worker.handle_record(as_record(due[70000]))
    first = list(reads)
    reads.clear()
    worker.handle_record(as_record(due[70001]))

    assert first == ["TransactWriteItems"]
    # the first try's `completedFiles < size - 1` fails, the count is made without it, then the read
    assert reads == ["TransactWriteItems", "TransactWriteItems", "GetItem"]
    assert sent.of(MessageKind.BUNDLE)


def test_a_resume_resends_no_file_that_is_waiting_or_counted(deployed, consumer, now, sent):
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    worker.handle_record(start_record(job.job_id, 70000))  # waiting; released 70002
    consumer.store.record_file(job.job_id, FileResult(70001, FileStatus.UNAVAILABLE))  # counted; released 70003
    sent.clear()

    worker.handle_record(sqs_record(WorkMessage(MessageKind.JOB, job.job_id).to_body(), receive_count=2))

    assert sorted(message.file_id for message in sent) == [70002, 70003]


def test_a_file_counted_after_its_due_time_records_how_late_it_was(deployed, consumer, now, sent, emitted):
    put_source(deployed.bucket, 70000)
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    worker.handle_record(start_record(job.job_id, 70000))
    due = sent.of(MessageKind.FILE)[-1]
    emitted()  # starting it recorded nothing worth keeping
    now[0] = T0 + 33  # the workers were 3 s behind

    worker.handle_record(as_record(due))

    [line] = emitted()
    assert line["FileWaitSeconds"] == [3.0] and line["FilesPrepared"] == [1.0]


@pytest.mark.parametrize("closed_by", ["cancel", "fail"])
def test_a_due_file_that_cannot_be_read_is_dropped_once_its_job_is_closed(
    deployed, consumer, now, sent, monkeypatch, closed_by
):
    """A redriven dead letter of a failed job's archived file must not fail again forever."""
    worker = waiting_worker(deployed, consumer, now, delay_s=30)
    job = started_job(deployed, consumer, *FILES)
    worker.handle_record(start_record(job.job_id, 70000))
    due = sent.of(MessageKind.FILE)[-1]
    now[0] = T0 + 30

    def archived(key):
        raise SourceUnreadable(f"{key} is in GLACIER and not restored")

    monkeypatch.setattr(consumer.storage, "readable_size", archived)
    with pytest.raises(SourceUnreadable):  # the job still runs: the failure is retried
        worker.handle(due, "m-1")
    if closed_by == "cancel":
        assert consumer.store.cancel(job.job_id)
    else:
        consumer.store.fail(job.job_id, "file 70000 is archived")

    assert worker.handle_batch([as_record(due, receives=2)]) == {"batchItemFailures": []}
    assert deployed.status(job.job_id)["completedFiles"] == 0
