"""A job past BUNDLE_MAX_BYTES, driven through process_work: planned into volumes, each built by
its own message under its own claim, counted once, and the job completed once, when all are built."""

from __future__ import annotations

import io
import zipfile

import pytest
import requests

from app import process_work
from chalicelib import runtime
from chalicelib.aws.queue import MessageKind, WorkMessage
from chalicelib.models import InitiateRequest
from tests.support.aws import drain, put_source, receive_records, sqs_record

NO_FAILURES = {"batchItemFailures": []}
# Sources of put_source(payload_size=n) are n + ~130 bytes: two of 3,000 and one of 1,000 make two volumes.
SIZES = {70000: 3000, 70007: 3000, 70014: 1000}


@pytest.fixture
def small_volumes(monkeypatch):
    monkeypatch.setenv("BUNDLE_MAX_BYTES", "5000")


def initiate(*file_ids: int) -> str:
    job, _ = runtime.service().initiate(InitiateRequest(file_ids))
    return job.job_id


def members(url: str) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(requests.get(url, timeout=5).content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_job_past_the_limit_completes_with_volumes_each_holding_exactly_its_files(small_volumes, deployed, consumer):
    sources = {file_id: put_source(deployed.bucket, file_id, size) for file_id, size in SIZES.items()}
    job_id = initiate(*SIZES)

    drain(process_work, deployed.queue_url)

    document = deployed.status(job_id)
    assert document["status"] == "completed"
    assert document["bundleCount"] == 2
    assert [bundle["fileIds"] for bundle in document["bundles"]] == [[70000, 70014], [70007]]
    first = document["bundles"][0]
    assert (document["downloadUrl"], document["size"], document["sha256"]) == (
        first["downloadUrl"],
        first["size"],
        first["sha256"],
    )
    for bundle in document["bundles"]:
        assert members(bundle["downloadUrl"]) == {f"{f}.zip": sources[f] for f in bundle["fileIds"]}
    assert consumer.bundle_builds == 2
    assert sorted(deployed.result_keys()) == sorted(b.key for b in deployed.store().get(job_id).bundles)


def test_a_redelivered_volume_message_neither_rebuilds_nor_counts_twice(small_volumes, deployed, consumer):
    for file_id, size in SIZES.items():
        put_source(deployed.bucket, file_id, size)
    job_id = initiate(*SIZES)
    drain(process_work, deployed.queue_url)
    builds = consumer.bundle_builds

    again = sqs_record(WorkMessage(MessageKind.BUNDLE, job_id, volume=2).to_body(), receive_count=2)
    assert process_work({"Records": [again]}, None) == NO_FAILURES

    assert consumer.bundle_builds == builds
    item = deployed.job_item(job_id)
    assert (item["volumesBuilt"], item["volumeCount"], item["status"]) == (2, 2, "completed")


@pytest.fixture
def retry_at_once(monkeypatch):
    """A failed message is visible again at once (its backoff is 0 s), so drain() meets it again."""
    monkeypatch.setenv("RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("RETRY_MAX_SECONDS", "0")


def test_a_volume_whose_build_crashed_is_retried_alone(small_volumes, retry_at_once, deployed, consumer, monkeypatch):
    for file_id, size in SIZES.items():
        put_source(deployed.bucket, file_id, size)
    job_id = initiate(*SIZES)
    build = consumer.storage.write_bundle
    crashes: list[str] = []

    def crash_volume_2_once(key, members):
        if "volume-2-" in key and not crashes:
            crashes.append(key)
            raise ConnectionError("consumer died mid-build")
        return build(key, members)

    monkeypatch.setattr(consumer.storage, "write_bundle", crash_volume_2_once)

    drain(process_work, deployed.queue_url)  # volume 2's message fails once, comes back, and is built

    assert crashes and deployed.status(job_id)["status"] == "completed"
    assert consumer.bundle_builds == 2  # volume 1 once; volume 2 once (its crash never reached S3)


def test_planning_sends_one_message_per_volume_and_a_repeat_plans_the_same(small_volumes, deployed, consumer):
    for file_id, size in SIZES.items():
        put_source(deployed.bucket, file_id, size)
    job = deployed.create_job(*SIZES, processing=True)
    for file_id in SIZES:
        consumer.worker.prepare_file(job, file_id)
    receive_records(deployed.queue_url)  # drop what counting released
    planning = sqs_record(WorkMessage(MessageKind.BUNDLE, job.job_id).to_body())

    process_work({"Records": [planning]}, None)
    process_work({"Records": [planning]}, None)

    volumes = [WorkMessage.from_body(record["body"]).volume for record in receive_records(deployed.queue_url)]
    assert sorted(volumes) == [1, 1, 2, 2]
    assert deployed.job_item(job.job_id)["volumeCount"] == 2
