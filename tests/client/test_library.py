"""`delineate_client.Client` against the dev stack over real HTTP, with faults injected by proxies."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from delineate_client import (
    Client,
    IntegrityError,
    JobCancelled,
    JobNotFound,
    NothingAvailable,
    RetryPolicy,
    ServiceUnavailable,
)

from tests.support.faultproxy import EXPIRED_XML, path_starts

IDS = [70000, 70007, 70014]
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.1)


def is_bundle(seen) -> bool:
    return seen.method == "GET" and "/results/" in seen.path


def is_source(seen) -> bool:
    return seen.method == "GET" and "/downloads/" in seen.path


def completed_job(client: Client, ids=IDS):
    return client.begin_download(ids).wait(timeout=60)


def test_begin_wait_download_checks_size_and_reports_progress(api, storage_proxy, tmp_path):
    seen_progress = []
    with Client(api) as client:
        job = client.begin_download(IDS)
        assert job.status == "queued" and job.document["totalFiles"] == 3
        assert job.wait(timeout=60, on_progress=lambda job: seen_progress.append(job.progress)) is job
        assert job.status == "completed" and job.progress == 100
        result = job.download(tmp_path / "bundle.zip")
    data = (tmp_path / "bundle.zip").read_bytes()
    assert result.path == tmp_path / "bundle.zip"
    assert result.size == len(data) == job.document["size"]
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "bundle.zip.part").exists()
    assert seen_progress[-1] == 100 and seen_progress == sorted(seen_progress)
    assert len([seen for seen in storage_proxy.requests() if is_bundle(seen)]) == 1  # the bytes came via the proxy


def test_wait_polls_no_faster_than_retry_after_when_the_server_has_no_long_poll(api, api_proxy):
    api_proxy.add(path_starts("/v1/download/status/"), "no_long_poll", times=1000)
    with Client(api) as client:
        job = client.begin_download([70000 + 7 * n for n in range(12)])
        job.wait(timeout=60)
    polls = api_proxy.requests("GET", f"/v1/download/status/{job.id}")
    assert len(polls) >= 2
    # The proxy hides the ETag, so the status answers carry only Retry-After: 2 and no long-poll headers go out.
    gaps = [later.at - earlier.at for earlier, later in zip(polls, polls[1:], strict=False)]
    assert min(gaps) >= 1.9, gaps
    assert all(seen.header("Prefer") is None and seen.header("If-None-Match") is None for seen in polls)


def test_a_download_cut_midway_resumes_with_range(api, storage_proxy, tmp_path):
    with Client(api) as client:
        job = completed_job(client)
        storage_proxy.add(is_bundle, "cut_after", cut_after=1000)
        result = job.download(tmp_path / "bundle.zip")
    fetches = [seen for seen in storage_proxy.requests() if is_bundle(seen)]
    assert [seen.fault for seen in fetches] == ["cut_after", None]
    assert fetches[0].header("Range") is None and fetches[1].header("Range") == "bytes=1000-"
    data = (tmp_path / "bundle.zip").read_bytes()
    assert len(data) == result.size == job.document["size"]
    assert data == fetches[0].answer  # the whole object, put together from two fetches


def test_a_download_interrupted_in_one_process_is_finished_by_the_next_from_its_part_file(api, storage_proxy, tmp_path):
    target = tmp_path / "bundle.zip"

    def ctrl_c(written: int, size: int | None) -> None:
        raise KeyboardInterrupt  # after the first chunk is on disk

    with Client(api) as client:
        job = completed_job(client)
        with pytest.raises(KeyboardInterrupt):
            job.download(target, on_progress=ctrl_c)
        token = job.token
    [leftover] = tmp_path.glob("bundle.zip.*.part")  # named after the bundle's SHA-256
    kept = leftover.stat().st_size
    assert kept > 0

    with Client(api) as later:  # a new process would do the same: it starts from the token
        result = later.resume(token).download(target)

    last_fetch = [seen for seen in storage_proxy.requests() if is_bundle(seen)][-1]
    assert last_fetch.header("Range") == f"bytes={kept}-"
    assert result.sha256 == job.document["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert not list(tmp_path.glob("bundle.zip*.part"))


def test_an_expired_url_is_replaced_by_a_fresh_one(api, api_proxy, storage_proxy, tmp_path):
    with Client(api) as client:
        job = completed_job(client)
        storage_proxy.add(
            is_bundle, "respond", status=403, body=EXPIRED_XML, headers={"Content-Type": "application/xml"}
        )
        result = job.download(tmp_path / "bundle.zip")
    assert [seen.fault for seen in storage_proxy.requests() if is_bundle(seen)] == ["respond", None]
    assert len(api_proxy.requests("GET", f"/v1/download/{job.id}")) == 1  # asked for a fresh URL once
    assert result.size == job.document["size"] == (tmp_path / "bundle.zip").stat().st_size


def test_checksum_mismatch_raises_and_leaves_no_file(api, api_proxy, storage_proxy, tmp_path):
    with Client(api) as client:
        job = completed_job(client)
        good = job.download(tmp_path / "good.zip")
        # The service will announce the bundle's sha256: here the proxy adds the true one to status documents.
        api_proxy.add(
            path_starts(f"/v1/download/status/{job.id}"),
            "patch_json",
            times=100,
            patch=lambda document: {**document, "sha256": good.sha256},
        )
        job.refresh()
        assert job.document["sha256"] == good.sha256
        assert job.download(tmp_path / "verified.zip").sha256 == good.sha256
        storage_proxy.add(is_bundle, "corrupt")  # same size, one byte flipped
        with pytest.raises(IntegrityError, match="SHA-256"):
            job.download(tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists() and not list(tmp_path.glob("bad.zip*.part"))


def test_size_mismatch_raises_and_leaves_no_file(api, api_proxy, tmp_path):
    with Client(api) as client:
        job = completed_job(client)
        api_proxy.add(
            path_starts(f"/v1/download/status/{job.id}"),
            "patch_json",
            times=100,
            patch=lambda document: {**document, "size": document["size"] + 1},
        )
        job.refresh()
        with pytest.raises(IntegrityError, match="bytes"):
            job.download(tmp_path / "bundle.zip")
    assert list(tmp_path.iterdir()) == []


def test_503_on_initiate_is_retried_after_retry_after_with_the_same_key(api, api_proxy):
    api_proxy.add(
        path_starts("/v1/download/initiate", "POST"), "respond", times=2, status=503, headers={"Retry-After": "1"}
    )
    started = time.monotonic()
    with Client(api) as client:
        job = client.begin_download(IDS)
    assert time.monotonic() - started >= 2.0
    posts = api_proxy.requests("POST", "/v1/download/initiate")
    assert [seen.fault for seen in posts] == ["respond", "respond", None]
    assert len({seen.header("Idempotency-Key") for seen in posts}) == 1
    assert posts[2].answer_status == 202 and job.status == "queued"


def test_a_connection_lost_after_the_job_was_made_does_not_make_a_second(api, api_proxy):
    api_proxy.add(path_starts("/v1/download/initiate", "POST"), "drop_before_answer")
    with Client(api) as client:
        job = client.begin_download(IDS)
    first, second = api_proxy.requests("POST", "/v1/download/initiate")
    assert first.answer_status == 202 and second.answer_status == 200  # the retry replayed the first job
    assert first.header("Idempotency-Key") == second.header("Idempotency-Key")
    assert job.id in first.answer.decode()


def test_503_that_persists_raises_service_unavailable(api, api_proxy):
    api_proxy.add(path_starts("/v1/download/status/"), "respond", times=10, status=503, headers={"Retry-After": "0"})
    with Client(api, retry=FAST_RETRY) as client:
        with pytest.raises(ServiceUnavailable):
            client.get_job(str(uuid.uuid4()))
    assert len(api_proxy.requests("GET", "/v1/download/status/")) == FAST_RETRY.attempts


def test_an_unreachable_service_raises_service_unavailable():
    from chalicelib.local.processes import free_port

    with Client(f"http://127.0.0.1:{free_port()}", retry=FAST_RETRY) as client:
        with pytest.raises(ServiceUnavailable, match="cannot reach"):
            client.begin_download(IDS)


def test_unknown_job_raises_job_not_found(api):
    with Client(api) as client:
        with pytest.raises(JobNotFound):
            client.get_job(str(uuid.uuid4()))


def test_cancel_then_wait_raises_job_cancelled(api):
    with Client(api) as client:
        job = client.begin_download([70000 + 7 * n for n in range(14)])
        assert job.cancel().status == "cancelled"
        assert job.cancel().status == "cancelled"  # cancelling again is harmless
        with pytest.raises(JobCancelled):
            job.wait(timeout=10)


def test_no_available_file_raises_nothing_available(api, tmp_path):
    with Client(api) as client:
        job = completed_job(client, [70001, 70002])
        assert job.document["availableFiles"] == 0
        with pytest.raises(NothingAvailable):
            job.download(tmp_path / "bundle.zip")
    assert list(tmp_path.iterdir()) == []


def test_download_files_fetches_each_available_file_by_its_own_url(api, storage_proxy, tmp_path):
    with Client(api) as client:
        job = completed_job(client, IDS + [70001])
        storage_proxy.add(is_source, "cut_after", cut_after=100)
        results = job.download_files(tmp_path / "files")
    assert sorted(result.path.name for result in results) == ["70000.zip", "70007.zip", "70014.zip"]
    sizes = {entry["fileId"]: entry["size"] for entry in job.files}
    for result in results:
        assert result.size == sizes[int(result.path.stem)] == result.path.stat().st_size
        assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert sorted(path.name for path in (tmp_path / "files").iterdir()) == ["70000.zip", "70007.zip", "70014.zip"]
    assert [seen.fault for seen in storage_proxy.requests() if is_source(seen)].count("cut_after") == 1


def test_a_token_resumes_the_job_in_another_client(api, tmp_path):
    with Client(api) as first:
        job = first.begin_download(IDS)
        token = job.token
    with Client(api) as second:
        again = second.resume(token)
        assert again.id == job.id
        assert second.resume(job.id).id == job.id  # a bare id works too
        assert again.wait(timeout=60).download(tmp_path / "bundle.zip").size == again.document["size"]


def test_wait_long_polls_when_the_server_offers_it(api, api_proxy):
    """The real server answers with an ETag and honours Prefer: wait, so the client holds one request per change."""
    with Client(api) as client:
        job = client.begin_download([70000 + 7 * n for n in range(12)])
        changes = []
        job.wait(timeout=60, on_progress=lambda job: changes.append(job.document["completedFiles"]))
    first, *rest = api_proxy.requests("GET", f"/v1/download/status/{job.id}")
    assert first.header("If-None-Match") is None and first.header("Prefer") is None
    assert rest and all(seen.header("Prefer") == "wait=20" and seen.header("If-None-Match") for seen in rest)
    # Each held request ended with a change (200) or after the wait (304): never a busy loop of polls.
    assert all(seen.answer_status in (200, 304) for seen in rest)
    assert len(rest) <= len(changes) + 1 and changes[-1] == 12 and job.status == "completed"


def test_a_gateway_500_is_retried_for_idempotent_requests(api, api_proxy):
    api_proxy.add(path_starts("/v1/download/initiate", "POST"), "respond", status=500)  # carries an Idempotency-Key
    api_proxy.add(path_starts("/v1/download/status/", "GET"), "respond", times=2, status=500)
    api_proxy.add(path_starts("/v1/download/", "DELETE"), "respond", status=500)
    with Client(api, retry=FAST_RETRY) as client:
        job = client.begin_download([70000 + 7 * n for n in range(14)])
        assert client.get_job(job.id).id == job.id
        job.cancel()
    assert [seen.fault for seen in api_proxy.requests("POST", "/v1/download/initiate")] == ["respond", None]
    assert [seen.fault for seen in api_proxy.requests("GET", "/v1/download/status/")] == ["respond", "respond", None]
    assert [seen.fault for seen in api_proxy.requests("DELETE", "/v1/download/")] == ["respond", None]


def test_a_gateway_500_on_a_post_without_idempotency_key_is_not_retried(api, api_proxy):
    """The client's own POSTs all carry a key; the transport is what decides, so it is asked directly."""
    import httpx
    from delineate_client._transport import send

    api_proxy.add(path_starts("/v1/download/check", "POST"), "respond", times=5, status=500)
    with httpx.Client(base_url=api) as http:
        response = send(http, "POST", "/v1/download/check", FAST_RETRY, json={"file_id": 70000})
    assert response.status_code == 500 and len(api_proxy.requests("POST", "/v1/download/check")) == 1


def test_429_without_retry_after_is_retried_after_a_growing_backoff(api, api_proxy):
    api_proxy.add(path_starts("/v1/download/initiate", "POST"), "respond", times=2, status=429)
    with Client(api, retry=FAST_RETRY) as client:
        job = client.begin_download(IDS)
    posts = api_proxy.requests("POST", "/v1/download/initiate")
    assert [seen.fault for seen in posts] == ["respond", "respond", None] and job.status == "queued"
    assert posts[1].at - posts[0].at >= 0.1 and posts[2].at - posts[1].at >= 0.2
