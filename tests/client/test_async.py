"""The async twin over the same dev stack and faults."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from delineate_client import AsyncClient, IntegrityError, JobCancelled

from tests.client.test_library import IDS, is_bundle, is_source
from tests.support.faultproxy import EXPIRED_XML, path_starts


def test_async_begin_wait_download_through_a_cut_and_an_expired_url(api, api_proxy, storage_proxy, tmp_path):
    async def scenario():
        progress = []
        async with AsyncClient(api) as client:
            job = await client.begin_download(IDS)
            await job.wait(timeout=60, on_progress=lambda job: progress.append(job.progress))
            storage_proxy.add(is_bundle, "respond", status=403, body=EXPIRED_XML)
            storage_proxy.add(is_bundle, "cut_after", cut_after=2000)
            result = await job.download(tmp_path / "bundle.zip")
            return job, result, progress

    job, result, progress = asyncio.run(scenario())
    data = (tmp_path / "bundle.zip").read_bytes()
    assert job.status == "completed" and progress[-1] == 100
    assert result.size == len(data) == job.document["size"] and result.sha256 == hashlib.sha256(data).hexdigest()
    fetches = [seen for seen in storage_proxy.requests() if is_bundle(seen)]
    assert [seen.fault for seen in fetches] == ["respond", "cut_after", None]
    assert fetches[2].header("Range") == "bytes=2000-"
    assert len(api_proxy.requests("GET", f"/v1/download/{job.id}")) == 1


def test_async_initiate_retries_503_with_one_key_and_resume_by_token(api, api_proxy, tmp_path):
    api_proxy.add(path_starts("/v1/download/initiate", "POST"), "respond", status=503, headers={"Retry-After": "1"})
    api_proxy.add(path_starts("/v1/download/initiate", "POST"), "drop_before_answer")

    async def scenario():
        async with AsyncClient(api) as client:
            job = await client.begin_download(IDS + [70001])
        async with AsyncClient(api) as other:
            again = await other.resume(job.token)
            await again.wait(timeout=60)
            return job, again, await again.download_files(tmp_path / "files")

    job, again, results = asyncio.run(scenario())
    posts = api_proxy.requests("POST", "/v1/download/initiate")
    assert [seen.fault for seen in posts] == ["respond", "drop_before_answer", None]
    assert [seen.answer_status for seen in posts] == [None, 202, 200]
    assert len({seen.header("Idempotency-Key") for seen in posts}) == 1
    assert again.id == job.id
    assert sorted(result.path.name for result in results) == ["70000.zip", "70007.zip", "70014.zip"]
    assert all(result.path.stat().st_size == result.size for result in results)


def test_async_checksum_mismatch_and_cancel(api, api_proxy, storage_proxy, tmp_path):
    async def scenario():
        async with AsyncClient(api) as client:
            job = await client.begin_download([70000])
            await job.wait(timeout=60)
            storage_proxy.add(is_source, "corrupt")
            api_proxy.add(
                path_starts(f"/v1/download/status/{job.id}"),
                "patch_json",
                times=100,
                patch=lambda document: {
                    **document,
                    "files": [{**entry, "sha256": "0" * 64} for entry in document.get("files", [])],
                },
            )
            with pytest.raises(IntegrityError):
                await job.download_files(tmp_path / "files")
            running = await client.begin_download([70000 + 7 * n for n in range(14)])
            await running.cancel()
            with pytest.raises(JobCancelled):
                await running.wait(timeout=10)

    asyncio.run(scenario())
    assert list((tmp_path / "files").iterdir()) == []
