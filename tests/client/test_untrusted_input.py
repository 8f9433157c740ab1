"""What the client takes from a pasted token or from the service's answers, and refuses to act on.

A token names a service and a job; the API key must never follow it to a host the caller did not
choose, and neither a job id from a token nor a file id from the service may name a path.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from delineate_client import Client, DelineateError

from tests.client.test_library import IDS, completed_job
from tests.support.faultproxy import path_starts
from tests.support.receiver import WebhookReceiver


def token_for(url: str, job_id: str) -> str:
    """A job token as the client writes one (`dlj1.` + unpadded urlsafe base64 of {"url", "job"})."""
    raw = json.dumps({"url": url, "job": job_id}).encode()
    return "dlj1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def elsewhere():
    """Another host, recording whatever is sent to it."""
    with WebhookReceiver() as running:
        yield running


def test_a_token_naming_another_service_is_refused_and_the_key_stays_home(api, api_proxy, elsewhere):
    token = token_for(elsewhere.url(""), str(uuid.uuid4()))
    with Client(api, api_key="k-secret") as client:
        with pytest.raises(DelineateError, match="names the service") as refused:
            client.resume(token)
    assert isinstance(refused.value, ValueError)
    assert elsewhere.deliveries == [] and api_proxy.requests() == []
    with Client(elsewhere.url(""), api_key="k-secret") as chosen:  # the caller passes that base URL: followed
        with pytest.raises(DelineateError):
            chosen.resume(token)
    assert [seen.headers.get("authorization") for seen in elsewhere.deliveries] == ["Bearer k-secret"]


def test_a_token_for_this_service_resumes_with_or_without_a_trailing_slash(api):
    with Client(api) as client:
        job = client.begin_download(IDS)
    with Client(api + "/") as again:
        assert again.resume(token_for(api + "/", job.id)).id == job.id


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d/..", "x" * 36])
def test_a_job_id_that_is_not_a_uuid_is_refused_before_any_request(api, api_proxy, job_id):
    with Client(api) as client:
        with pytest.raises(DelineateError, match="not a job id"):
            client.resume(token_for(api, job_id))
        with pytest.raises(DelineateError, match="not a job id"):
            client.get_job(job_id)
    assert api_proxy.requests() == []


def test_a_job_id_from_the_service_that_is_not_a_uuid_is_refused(api, api_proxy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    api_proxy.add(path_starts("/v1/download/initiate"), "patch_json", patch=lambda doc: {**doc, "jobId": "../evil"})
    with Client(api) as client:
        with pytest.raises(DelineateError, match="not a job id"):
            client.begin_download(IDS)
    assert list(tmp_path.iterdir()) == []


def test_a_file_id_from_the_service_that_is_not_an_integer_is_refused(api, api_proxy, tmp_path):
    def escape(document: dict) -> dict:
        files = [
            {**entry, "fileId": "../escape"} if entry["fileId"] == IDS[0] else entry
            for entry in document.get("files", [])
        ]
        return {**document, "files": files}

    with Client(api) as client:
        job = completed_job(client)
        api_proxy.add(path_starts(f"/v1/download/status/{job.id}"), "patch_json", times=100, patch=escape)
        with pytest.raises(DelineateError, match="file id"):
            job.download_files(tmp_path / "files")
    assert not (tmp_path / "escape.zip").exists()
    assert [path.name for path in tmp_path.iterdir()] in ([], ["files"])
