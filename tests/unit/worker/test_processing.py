"""The worker, driven through process_work as Lambda drives it: fan-out, files, bundle,
at-least-once delivery, poison messages, cancellation, partial batch responses."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from botocore.exceptions import ClientError

from app import process_work
from chalicelib import runtime
from chalicelib.aws.queue import MessageKind, SendFailed, WorkMessage
from chalicelib.aws.storage import SourceUnreadable
from chalicelib.models import FileResult, FileStatus, InitiateRequest
from chalicelib.worker.processing import Worker
from tests.support.aws import (
    delete_records,
    drain,
    put_source,
    queue_depth,
    receive_records,
    receive_records_visible_again,
    sqs_record,
)

UNKNOWN_JOB = "3f0c2f7e-1111-4111-8111-111111111111"
STATUS_RANK = {"queued": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2}
NO_FAILURES = {"batchItemFailures": []}


def initiate(*file_ids: int) -> str:
    job, _ = runtime.service().initiate(InitiateRequest(file_ids))
    return job.job_id


def record(
    kind: MessageKind, job_id: str, file_id: int | None = None, message_id: str | None = None, receive_count: int = 1
) -> dict:
    return sqs_record(WorkMessage(kind, job_id, file_id).to_body(), message_id, receive_count)


def deliver(*records: dict) -> dict:
    """One Lambda invocation of the SQS handler with these records."""
    return process_work({"Records": list(records)}, None)


def failed_ids(result: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def bundle_members(deployed, job_id: str) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(deployed.read(deployed.published_key(job_id)))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def work(body: str) -> tuple:
    """What a work message asks for; its trace header is beside the point here."""
    message = WorkMessage.from_body(body)
    return (message.kind, message.job_id, message.file_id)


def counts(document: dict) -> tuple:
    return (document["status"], document["progress"], document["completedFiles"], document["availableFiles"])


# -- the happy path ---------------------------------------------------------------


def test_job_with_two_of_three_sources_completes_with_a_bundle_of_exactly_those_two(deployed, consumer):
    sources = {70000: put_source(deployed.bucket, 70000), 70007: put_source(deployed.bucket, 70007)}
    job_id = initiate(70000, 70003, 70007)

    drain(process_work, deployed.queue_url)

    document = deployed.status(job_id)
    assert counts(document) == ("completed", 100, 3, 2)
    assert document["totalFiles"] == 3
    assert document["error"] is None
    assert document["completedAt"] is not None
    assert bundle_members(deployed, job_id) == {"70000.zip": sources[70000], "70007.zip": sources[70007]}
    bundle = deployed.read(deployed.published_key(job_id))
    assert document["size"] == len(bundle)
    assert requests.get(document["downloadUrl"], timeout=5).content == bundle
    assert deployed.result_keys() == [deployed.published_key(job_id)]
    assert consumer.bundle_builds == 1


def test_the_job_item_holds_the_bundle_key_and_the_status_signs_a_url_at_read_time(deployed, consumer):
    source = put_source(deployed.bucket, 70000)
    job_id = initiate(70000)
    drain(process_work, deployed.queue_url)

    before = datetime.now(timezone.utc).replace(microsecond=0)
    document = deployed.status(job_id)

    item = deployed.job_item(job_id)
    assert {"downloadUrl", "downloadUrlExpiresAt"}.isdisjoint(item)
    assert item["resultKey"] == deployed.published_key(job_id)
    signed_at = datetime.strptime(parse_qs(urlparse(document["downloadUrl"]).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert signed_at.replace(tzinfo=timezone.utc) >= before
    assert (
        zipfile.ZipFile(io.BytesIO(requests.get(document["downloadUrl"], timeout=5).content)).read("70000.zip")
        == source
    )


def test_completed_job_lists_each_file_with_its_outcome(deployed, consumer):
    source = put_source(deployed.bucket, 70000)
    job_id = initiate(70003, 70000)
    drain(process_work, deployed.queue_url)

    files = runtime.service().status(job_id, include_files=True)["files"]

    assert [(f["fileId"], f["status"], f["size"]) for f in files] == [
        (70003, "unavailable", None),
        (70000, "available", len(source)),
    ]
    assert files[0]["downloadUrl"] is None
    assert requests.get(files[1]["downloadUrl"], timeout=5).content == source


def test_job_with_no_available_file_completes_without_a_download(deployed, consumer):
    job_id = initiate(70003, 70004)

    drain(process_work, deployed.queue_url)

    document = deployed.status(job_id)
    assert counts(document) == ("completed", 100, 2, 0)
    assert (document["downloadUrl"], document["size"], document["error"]) == (None, None, None)
    assert deployed.result_keys() == []
    assert consumer.bundle_builds == 0


def test_initiate_sends_one_message_whatever_the_number_of_files(deployed):
    initiate(*range(10000, 11000))

    assert queue_depth(deployed.sqs, deployed.queue_url) == 1


def test_fan_out_sends_one_file_message_per_file(deployed, consumer):
    job_id = initiate(70000, 70003, 70007)
    [job_record] = receive_records(deployed.queue_url)

    deliver(job_record)
    delete_records(deployed.queue_url, [job_record])

    sent = sorted(work(r["body"]) for r in receive_records(deployed.queue_url))
    assert sent == [(MessageKind.FILE, job_id, file_id) for file_id in (70000, 70003, 70007)]
    assert deployed.status(job_id)["status"] == "processing"


# -- at-least-once delivery -------------------------------------------------------


def test_every_message_delivered_twice_and_out_of_order_counts_each_file_once(deployed, consumer):
    put_source(deployed.bucket, 70000)
    put_source(deployed.bucket, 70007)
    job_id = initiate(70000, 70003, 70007)
    seen: list[dict] = []
    observed: list[str] = []

    for _ in range(20):  # bounded: each round is one receive of whatever is waiting
        records = receive_records(deployed.queue_url)
        if not records:
            break
        for delivery in records + list(reversed(records)):  # each twice, same messageId, second pass reversed
            assert deliver(delivery) == NO_FAILURES
            observed.append(deployed.status(job_id)["status"])
        delete_records(deployed.queue_url, records)
        seen.extend(records)
    finished = deployed.status(job_id)
    for late in reversed(seen):  # and every message once more, long after the job finished
        assert deliver(late) == NO_FAILURES

    assert counts(finished) == ("completed", 100, 3, 2)
    unsigned = {**finished, "downloadUrl": None}  # signed anew on every read
    assert {**deployed.status(job_id), "downloadUrl": None} == unsigned
    ranks = [STATUS_RANK[status] for status in observed]
    assert ranks == sorted(ranks), observed
    assert consumer.bundle_builds == 1
    assert set(bundle_members(deployed, job_id)) == {"70000.zip", "70007.zip"}
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0


def test_redelivered_job_message_resends_only_the_pending_files(deployed, consumer):
    job = deployed.create_job(70000, 70003, 70007, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70003, FileStatus.UNAVAILABLE))

    deliver(record(MessageKind.JOB, job.job_id))

    resent = sorted(work(r["body"]) for r in receive_records(deployed.queue_url))
    assert resent == [(MessageKind.FILE, job.job_id, 70000), (MessageKind.FILE, job.job_id, 70007)]


def test_redelivered_job_message_with_every_file_counted_asks_for_the_bundle(deployed, consumer):
    job = deployed.create_job(70003, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70003, FileStatus.UNAVAILABLE))

    deliver(record(MessageKind.JOB, job.job_id))

    [bundle] = receive_records(deployed.queue_url)
    assert work(bundle["body"]) == (MessageKind.BUNDLE, job.job_id, None)


def test_two_consumers_racing_to_bundle_the_same_job_build_it_once(deployed, consumer, monkeypatch):
    source = put_source(deployed.bucket, 70000)
    job = deployed.create_job(70000, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, len(source)))
    build = consumer.storage.write_bundle
    rival: list[dict] = []

    def build_while_a_rival_arrives(key, members):
        if not rival:  # consumer B's message arrives while consumer A holds the claim and builds
            rival.append(deliver(record(MessageKind.BUNDLE, job.job_id, message_id="message-b")))
        return build(key, members)

    monkeypatch.setattr(consumer.storage, "write_bundle", build_while_a_rival_arrives)

    first = deliver(record(MessageKind.BUNDLE, job.job_id, message_id="message-a"))

    assert (first, rival) == (NO_FAILURES, [NO_FAILURES])
    assert consumer.bundle_builds == 1
    assert deployed.status(job.job_id)["status"] == "completed"
    assert bundle_members(deployed, job.job_id) == {"70000.zip": source}


def test_a_redelivery_building_alongside_the_first_build_never_overwrites_the_published_bundle(
    deployed, consumer, monkeypatch
):
    """The claiming message's visibility lapses mid-build: SQS hands the same message to a second consumer."""
    source = put_source(deployed.bucket, 70000)
    job = deployed.create_job(70000, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, len(source)))
    build = consumer.storage.write_bundle
    builds: list[str] = []
    seen: dict[str, object] = {}

    def slow_first_build(key, members):
        builds.append(key)
        if len(builds) == 1:  # the redelivery starts, finishes and publishes while the first build still runs
            seen["redelivery"] = deliver(record(MessageKind.BUNDLE, job.job_id, message_id="same"))
            seen["key"] = deployed.published_key(job.job_id)
            seen["etag"] = deployed.s3.head_object(Bucket=deployed.bucket, Key=seen["key"])["ETag"]
        return build(key, members)

    monkeypatch.setattr(consumer.storage, "write_bundle", slow_first_build)

    assert deliver(record(MessageKind.BUNDLE, job.job_id, message_id="same")) == NO_FAILURES

    key = seen["key"]
    assert seen["redelivery"] == NO_FAILURES
    assert (
        consumer.bundle_builds == 2 and len(set(builds)) == 2
    )  # the claim names the message: its redelivery builds too
    assert key == builds[1]
    assert deployed.published_key(job.job_id) == key
    assert deployed.result_keys() == [key]  # the later build deleted its own object
    assert deployed.s3.head_object(Bucket=deployed.bucket, Key=key)["ETag"] == seen["etag"]
    assert bundle_members(deployed, job.job_id) == {"70000.zip": source}


def test_a_build_orphaned_by_a_dead_consumer_is_deleted_when_a_later_build_publishes(deployed, consumer):
    """A consumer uploaded its bundle and died before completing the job; its redelivery rebuilds."""
    source = put_source(deployed.bucket, 70000)
    job = deployed.create_job(70000, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, len(source)))
    orphan = f"results/{job.job_id}/dead-consumer.zip"
    deployed.s3.put_object(Bucket=deployed.bucket, Key=orphan, Body=b"left behind")
    elsewhere = f"results/{job.job_id}-other.zip"  # shares the job id's characters, not its folder
    deployed.s3.put_object(Bucket=deployed.bucket, Key=elsewhere, Body=b"not this job's")

    assert deliver(record(MessageKind.BUNDLE, job.job_id)) == NO_FAILURES

    published = deployed.published_key(job.job_id)
    assert published != orphan
    assert sorted(deployed.result_keys()) == sorted([published, elsewhere])
    assert bundle_members(deployed, job.job_id) == {"70000.zip": source}


# -- poison messages --------------------------------------------------------------


def poison(kind: str, deployed) -> tuple[str, str | None]:
    """(body, job id or None) of a message that can never succeed."""
    if kind == "malformed body":
        return "{this is not a work message", None
    if kind == "file outside its job":
        job = deployed.create_job(70000, processing=True)
        return WorkMessage(MessageKind.FILE, job.job_id, 99999).to_body(), job.job_id
    return WorkMessage(MessageKind.JOB, UNKNOWN_JOB).to_body(), None


@pytest.mark.parametrize("kind", ["malformed body", "unknown job"])
def test_poison_message_fails_on_every_receive(kind, deployed, consumer):
    body, _ = poison(kind, deployed)
    max_receives = deployed.settings.max_receive_count

    results = [deliver(sqs_record(body, "poison", receive_count=count)) for count in range(1, max_receives + 1)]

    assert results == [{"batchItemFailures": [{"itemIdentifier": "poison"}]}] * max_receives
    assert deployed.job_item(UNKNOWN_JOB) is None


def test_file_outside_its_job_is_dead_lettered_at_once_and_the_job_goes_on(deployed, consumer):
    body, job_id = poison("file outside its job", deployed)

    result = deliver(sqs_record(body, "misaddressed", receive_count=1))

    assert result == NO_FAILURES
    assert deployed.dead_letters() == [body]
    assert deployed.status(job_id)["status"] == "processing"
    assert deployed.status(job_id)["error"] is None


def test_storage_refusal_fails_the_job_with_a_fixed_reason_and_no_internals(deployed, consumer, monkeypatch):
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/delineate-worker/session is not authorized "
        f"to perform: s3:GetObject on resource: arn:aws:s3:::{deployed.bucket}/downloads/70000.zip"
    )

    def access_denied(key):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": denied}}, "HeadObject")

    monkeypatch.setattr(consumer.storage, "readable_size", access_denied)
    job = deployed.create_job(70000, processing=True)
    max_receives = deployed.settings.max_receive_count

    for count in range(1, max_receives + 1):
        deliver(record(MessageKind.FILE, job.job_id, 70000, message_id="denied", receive_count=count))

    error = deployed.status(job.job_id)["error"]
    assert error == f"file 70000 could not be read from storage after {max_receives} attempts"
    assert "arn:" not in error and "123456789012" not in error and deployed.bucket not in error


def test_job_step_that_keeps_failing_fails_the_job_on_the_last_receive(deployed, consumer, monkeypatch):
    def queue_refuses(messages):
        raise SendFailed("SQS rejected 3 message(s) after 3 attempts")

    monkeypatch.setattr(consumer.queue, "send_many", queue_refuses)
    job_id = initiate(70000, 70003, 70007)
    [job_record] = receive_records(deployed.queue_url)

    results = [deliver({**job_record, "attributes": {"ApproximateReceiveCount": str(count)}}) for count in (1, 2, 3)]

    assert all(failed_ids(result) == [job_record["messageId"]] for result in results)
    assert deployed.status(job_id)["error"] == "the job could not be started after 3 attempts"


def test_poison_message_is_dead_lettered_after_max_receives_and_its_job_fails(deployed, consumer, monkeypatch):
    def archived(key):
        raise SourceUnreadable(f"{key} is in GLACIER and not restored")

    monkeypatch.setattr(consumer.storage, "readable_size", archived)
    job_id = deployed.create_job(70000, processing=True).job_id
    body = WorkMessage(MessageKind.FILE, job_id, 70000).to_body()
    deployed.sqs.send_message(QueueUrl=deployed.queue_url, MessageBody=body)
    settings = dataclasses.replace(deployed.settings, retry_base_seconds=0)
    runtime.override(worker=Worker(consumer.store, consumer.queue, consumer.storage, settings))
    receives = 0

    for _ in range(10):  # bounded; a zero visibility timeout and retry delay make each failure visible again at once
        records = receive_records_visible_again(deployed.queue_url)
        if not records:
            break
        result = deliver(*records)
        delete_records(deployed.queue_url, [r for r in records if r["messageId"] not in failed_ids(result)])
        receives += len(records)

    assert receives == deployed.settings.max_receive_count == 3
    assert deployed.dead_letters() == [body]
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0
    assert deployed.status(job_id)["status"] == "failed"
    assert deployed.status(job_id)["error"] == "file 70000 is archived and could not be read after 3 attempts"


def test_batch_reports_only_the_records_that_failed(deployed, consumer):
    first, second = deployed.create_job(70000), deployed.create_job(70001)
    batch = [record(MessageKind.JOB, first.job_id), sqs_record("{broken"), record(MessageKind.JOB, second.job_id)]

    result = deliver(*batch)

    assert result == {"batchItemFailures": [{"itemIdentifier": batch[1]["messageId"]}]}
    assert [deployed.status(job.job_id)["status"] for job in (first, second)] == ["processing", "processing"]
    assert queue_depth(deployed.sqs, deployed.queue_url) == 2


# -- cancellation -----------------------------------------------------------------


def test_job_cancelled_mid_way_stays_cancelled_and_prepares_no_more_files(deployed, consumer):
    for file_id in (70000, 70003, 70007):
        put_source(deployed.bucket, file_id)
    job_id = initiate(70000, 70003, 70007)
    [job_record] = receive_records(deployed.queue_url)
    deliver(job_record)
    delete_records(deployed.queue_url, [job_record])
    first_file, *others = receive_records(deployed.queue_url)
    deliver(first_file)
    delete_records(deployed.queue_url, [first_file])

    runtime.service().cancel(job_id)
    for pending in others:  # the rest of the fan-out is delivered after the cancel
        deployed.sqs.change_message_visibility(
            QueueUrl=deployed.queue_url, ReceiptHandle=pending["receiptHandle"], VisibilityTimeout=0
        )
    drain(process_work, deployed.queue_url)

    document = deployed.status(job_id)
    assert counts(document) == ("cancelled", 33, 1, 1)
    assert document["downloadUrl"] is None
    assert len(consumer.store.file_results(job_id)) == 1
    assert deployed.result_keys() == []
    assert consumer.bundle_builds == 0


def test_job_cancelled_while_its_bundle_is_built_keeps_no_bundle(deployed, consumer, monkeypatch):
    source = put_source(deployed.bucket, 70000)
    job = deployed.create_job(70000, processing=True)
    consumer.store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, len(source)))
    build = consumer.storage.write_bundle

    def build_then_get_cancelled(key, members):
        size = build(key, members)
        runtime.service().cancel(job.job_id)
        return size

    monkeypatch.setattr(consumer.storage, "write_bundle", build_then_get_cancelled)

    assert deliver(record(MessageKind.BUNDLE, job.job_id)) == NO_FAILURES

    document = deployed.status(job.job_id)
    assert (document["status"], document["downloadUrl"]) == ("cancelled", None)
    assert deployed.result_keys() == []


def test_messages_for_a_cancelled_job_are_consumed_without_work(deployed, consumer):
    job = deployed.create_job(70000, processing=True)
    runtime.service().cancel(job.job_id)

    results = [
        deliver(record(kind, job.job_id, file_id))
        for kind, file_id in ((MessageKind.JOB, None), (MessageKind.FILE, 70000), (MessageKind.BUNDLE, None))
    ]

    assert results == [NO_FAILURES] * 3
    assert queue_depth(deployed.sqs, deployed.queue_url) == 0
    assert counts(deployed.status(job.job_id)) == ("cancelled", 0, 0, 0)
    assert json.dumps(consumer.s3_calls) == "{}"
