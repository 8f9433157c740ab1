"""A client's whole journey: initiate, poll, follow the redirect, unzip real bytes."""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
import zipfile

import requests

from chalicelib.local.samples import sample_zip
from chalicelib.polling import wait_until
from tests.support.devstack import poll_until_terminal

JSON = {"Content-Type": "application/json"}
# Queue hops on a loaded 2-core CI machine: its make test run measured 3.3 s against 3 s of delays.
SCHEDULING_ALLOWANCE_SECONDS = 2


def initiate(stack, file_ids, **headers):
    return requests.post(stack.url("/v1/download/initiate"), json={"file_ids": file_ids}, headers=headers, timeout=10)


def test_job_completes_and_redirect_serves_a_zip_of_the_available_files(dev_stack):
    # Given two of three requested files exist (70000 and 70007 are samples, 70001 is not)
    response = initiate(dev_stack, [70000, 70007, 70001])
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["totalFileIds"] == 3
    assert response.headers["Location"] == accepted["statusUrl"]

    # When the client polls until the job is terminal
    final, seen = poll_until_terminal(dev_stack, accepted["jobId"])

    # Then progress only moved forward, Retry-After came while it was running,
    assert final["status"] == "completed"
    assert (final["completedFiles"], final["availableFiles"], final["progress"]) == (3, 2, 100)
    progress = [document["progress"] for document in seen]
    assert progress == sorted(progress)
    running = [document for document in seen if document["status"] in ("queued", "processing")]
    assert all(document["_retryAfter"] for document in running)
    assert seen[-1]["_retryAfter"] is None

    # and the redirect leads to a zip holding exactly the two files, byte for byte.
    redirect = requests.get(dev_stack.url(f"/v1/download/{accepted['jobId']}"), allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    bundle = requests.get(redirect.headers["Location"], timeout=30)
    assert bundle.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(bundle.content))
    assert sorted(archive.namelist()) == ["70000.zip", "70007.zip"]
    assert archive.read("70000.zip") == sample_zip(70000)
    assert archive.read("70007.zip") == sample_zip(70007)
    assert final["size"] == len(bundle.content)
    assert final["sha256"] == hashlib.sha256(bundle.content).hexdigest()  # hashed while it streamed to S3


def test_include_files_gives_each_available_file_its_own_url(dev_stack):
    job_id = initiate(dev_stack, [70014, 70021, 70002]).json()["jobId"]
    poll_until_terminal(dev_stack, job_id)

    document = requests.get(dev_stack.url(f"/v1/download/status/{job_id}?include=files"), timeout=10).json()

    by_id = {entry["fileId"]: entry for entry in document["files"]}
    assert by_id[70002]["status"] == "unavailable" and by_id[70002]["downloadUrl"] is None
    for file_id in (70014, 70021):
        assert by_id[file_id]["status"] == "available"
        assert requests.get(by_id[file_id]["downloadUrl"], timeout=30).content == sample_zip(file_id)


def test_job_with_no_available_file_completes_without_a_url(dev_stack):
    job_id = initiate(dev_stack, [70001, 70002]).json()["jobId"]

    final, _ = poll_until_terminal(dev_stack, job_id)

    assert final["status"] == "completed" and final["availableFiles"] == 0
    assert final["downloadUrl"] is None
    response = requests.get(dev_stack.url(f"/v1/download/{job_id}"), allow_redirects=False, timeout=10)
    assert response.status_code == 409


def test_idempotency_key_returns_the_same_job(dev_stack):
    first = initiate(dev_stack, [70028], **{"Idempotency-Key": "e2e-key-1"})
    again = initiate(dev_stack, [70028], **{"Idempotency-Key": "e2e-key-1"})
    other = initiate(dev_stack, [70035], **{"Idempotency-Key": "e2e-key-1"})

    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["jobId"] == first.json()["jobId"]
    assert other.status_code == 422 and other.json()["error"] == "Unprocessable Entity"


def test_cancel_stops_a_running_job(dev_stack):
    file_ids = list(range(70000, 70100, 7)) * 1  # 15 files, about 4 rounds of 4 consumers
    job_id = initiate(dev_stack, file_ids).json()["jobId"]

    response = requests.delete(dev_stack.url(f"/v1/download/{job_id}"), timeout=10)

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    final, _ = poll_until_terminal(dev_stack, job_id)
    assert final["status"] == "cancelled" and final["downloadUrl"] is None
    again = requests.delete(dev_stack.url(f"/v1/download/{job_id}"), timeout=10)
    assert again.status_code == 409 and again.json()["status"] == "cancelled"


def test_check_and_start_answer_for_a_single_file(dev_stack):
    check = requests.post(dev_stack.url("/v1/download/check"), json={"file_id": 70042}, timeout=10).json()
    assert check == {
        "file_id": 70042,
        "available": True,
        "s3Key": "downloads/70042.zip",
        "size": len(sample_zip(70042)),
    }
    missing = requests.post(dev_stack.url("/v1/download/check"), json={"file_id": 70043}, timeout=10).json()
    assert missing["available"] is False and missing["s3Key"] is None

    start = requests.post(dev_stack.url("/v1/download/start"), json={"file_id": 70042}, timeout=30)

    assert start.status_code == 200, start.text
    body = start.json()
    assert body["status"] == "completed" and body["size"] == len(sample_zip(70042))
    assert requests.get(body["downloadUrl"], timeout=30).content == sample_zip(70042)


def test_health_reports_every_dependency(dev_stack):
    response = requests.get(dev_stack.url("/health"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "checks": {"storage": "ok", "database": "ok", "queue": "ok"}}


def test_a_small_job_behind_a_big_one_finishes_within_a_few_file_times(dev_stack):
    """Fair scheduling: the big job keeps only its window of files out, so the small one
    waits about one file's time, not the big job's 1,000-file fan-out."""
    # A file waits as a delayed SQS message, and SQS delays by whole seconds (worker/processing.py).
    # LocalStack makes delayed messages visible from a worker that runs once a second (its
    # sqs/provider.py schedules the queue update with period=1), so there a delay takes up to 1 s more.
    granularity = 1 if os.environ.get("DELINEATE_E2E_ENDPOINT") else 0
    max_file_seconds = math.ceil(int(dev_stack.env["DOWNLOAD_DELAY_MAX_MS"]) / 1000) + granularity
    big_files = 1000  # the most a job may ask for: its whole fan-out would be 2,000 messages
    big = initiate(dev_stack, list(range(20000, 20000 + big_files))).json()["jobId"]
    wait_until(lambda: status_of(dev_stack, big)["completedFiles"] > 0, timeout=30, what="the big job under way")

    submitted = time.monotonic()
    small = initiate(dev_stack, [70000, 70007]).json()["jobId"]
    final, _ = poll_until_terminal(dev_stack, small)
    took = time.monotonic() - submitted
    big_then = status_of(dev_stack, big)
    requests.delete(dev_stack.url(f"/v1/download/{big}"), timeout=10)

    assert final["status"] == "completed"
    # Behind a fan-out of every file at once, the small job's start would queue behind all 1,000 of
    # the big job's, and the big one would be nearly done when it ends. With the window it overtakes:
    assert big_then["status"] == "processing"
    assert big_then["completedFiles"] < big_files // 2, big_then["completedFiles"]
    # And in time: its files' one delay, plus a few queue hops (start, due, bundle) each behind at
    # most a window of the big job's messages, plus this client's polling.
    assert took <= 3 * max_file_seconds + SCHEDULING_ALLOWANCE_SECONDS, f"{took:.1f}s behind the big job"


def status_of(stack, job_id: str) -> dict:
    return requests.get(stack.url(f"/v1/download/status/{job_id}"), timeout=10).json()
