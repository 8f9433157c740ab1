"""A job past BUNDLE_MAX_BYTES on the real dev stack: several zips, each holding exactly its files,
each reachable by `GET /v1/download/{jobId}?volume=N`, and bad volumes answered 4xx in the error shape."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
import requests

from chalicelib.local.samples import sample_zip
from tests.support.devstack import FAST_FILES, poll_until_terminal, start_dev_stack

# Sample zips of 293,373, 471,463 and 182,573 bytes under a 500,000-byte limit: first fit puts the
# third beside the first, so two volumes, [70063, 70056] and [70070].
FILES = [70063, 70070, 70056]
LIMIT = "500000"


@pytest.fixture(scope="module")
def volume_stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("volumes"), **FAST_FILES, BUNDLE_MAX_BYTES=LIMIT)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def split_job(volume_stack) -> dict:
    response = requests.post(volume_stack.url("/v1/download/initiate"), json={"file_ids": FILES}, timeout=10)
    assert response.status_code == 202
    final, _ = poll_until_terminal(volume_stack, response.json()["jobId"])
    assert final["status"] == "completed", final
    return final


def fetch(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    return response.content


def test_the_job_completes_with_one_zip_per_volume_each_holding_exactly_its_files(split_job):
    assert split_job["bundleCount"] == 2
    assert [bundle["fileIds"] for bundle in split_job["bundles"]] == [[70063, 70056], [70070]]
    for bundle in split_job["bundles"]:
        content = fetch(bundle["downloadUrl"])
        assert (len(content), hashlib.sha256(content).hexdigest()) == (bundle["size"], bundle["sha256"])
        assert len(content) <= int(LIMIT)
        archive = zipfile.ZipFile(io.BytesIO(content))
        assert archive.namelist() == [f"{file_id}.zip" for file_id in bundle["fileIds"]]
        assert all(archive.read(f"{file_id}.zip") == sample_zip(file_id) for file_id in bundle["fileIds"])
    first = split_job["bundles"][0]
    assert (split_job["size"], split_job["sha256"]) == (first["size"], first["sha256"])


@pytest.mark.parametrize("volume", [1, 2])
def test_volume_n_redirects_to_that_zip(volume_stack, split_job, volume):
    job_id = split_job["jobId"]

    redirect = requests.get(
        volume_stack.url(f"/v1/download/{job_id}?volume={volume}"), allow_redirects=False, timeout=10
    )

    assert redirect.status_code == 302
    assert f"delineate-{job_id}-{volume}-of-2.zip" in requests.utils.unquote(redirect.headers["Location"])
    assert hashlib.sha256(fetch(redirect.headers["Location"])).hexdigest() == split_job["bundles"][volume - 1]["sha256"]


@pytest.mark.parametrize(
    ("volume", "status"), [("99", 404), ("3", 404), ("0", 400), ("-1", 400), ("abc", 400), ("1.5", 400), ("", 400)]
)
def test_a_bad_volume_is_a_4xx_in_the_error_shape(volume_stack, split_job, volume, status):
    response = requests.get(
        volume_stack.url(f"/v1/download/{split_job['jobId']}"),
        params={"volume": volume},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message", "requestId"}
    assert "volume" in body["message"]
