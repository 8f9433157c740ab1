"""Representative calls through Chalice's test client (moto in process): every answer,
success or error, is one the OpenAPI document describes, with its schema and headers."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.api.openapi import DOCS_CSP
from chalicelib.api.service import DownloadService
from chalicelib.aws.clients import API_CONFIG, make_clients
from chalicelib.aws.queue import WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.jobs.store import JobStore
from chalicelib.keys.store import KeyStore
from tests.contract.conformance import assert_conforms
from tests.support.aws import drain, put_source

JSON = {"Content-Type": "application/json"}
UNKNOWN_JOB = "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"
STATUS, RESULT = "/v1/download/status/{job_id}", "/v1/download/{job_id}"


class _KeyedHttp:
    """Chalice's test client sending an API key with every request, as a keyed client does."""

    def __init__(self, http, key_headers: dict) -> None:
        self._http, self._key_headers = http, key_headers
        self.http = self  # stands in for the Client: callers reach it as `client.http`

    def request(self, method, path, headers=None, body=b""):
        return self._http.request(method, path, headers={**self._key_headers, **(headers or {})}, body=body)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)


@pytest.fixture(params=["none", "api-key"])
def mode(request, stack, monkeypatch):
    """Every call runs in both modes: AUTH_MODE=none (make dev) and api-key (the cloud stage)."""
    monkeypatch.setenv("AUTH_MODE", request.param)
    runtime.reset()
    return request.param


@pytest.fixture
def client(mode, stack):
    import app

    with Client(app.app) as test_client:
        if mode == "api-key":
            issued = KeyStore(make_clients(API_CONFIG).dynamodb.Table(stack["JobsTableName"])).create("contract")
            yield _KeyedHttp(test_client.http, {"Authorization": f"Bearer {issued.key}"})
        else:
            yield test_client


def call(client, method, path, route=None, body=None, headers=None):
    payload = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    response = client.http.request(method, path, body=payload, headers={**JSON, **(headers or {})})
    return response, assert_conforms(method, route or path, response)


def initiate(client, file_ids, **headers):
    return call(client, "POST", "/v1/download/initiate", body={"file_ids": file_ids}, headers=headers)


def test_service_routes(client):
    _, index = call(client, "GET", "/")
    assert index["docs"] == "/docs"
    _, spec = call(client, "GET", "/openapi.json")
    assert spec["info"]["title"] == "Delineate"
    _, health = call(client, "GET", "/health")
    assert health["status"] == "healthy"


def test_docs_page_renders_every_operation_without_scripts(client):
    response, page = call(client, "GET", "/docs")
    assert response.headers["Content-Security-Policy"] == DOCS_CSP
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for operation_id in (
        "initiateDownload",
        "getDownloadStatus",
        "downloadResult",
        "cancelDownload",
        "checkFile",
        "startDownload",
    ):
        assert f'id="{operation_id}"' in page


def test_a_job_from_initiate_to_redirect(client, stack):
    put_source(stack["BucketName"], 70000)
    response, accepted = initiate(client, [70000, 70001, 70000])
    assert response.status_code == 202 and accepted["totalFileIds"] == 2
    job = accepted["jobId"]

    response, queued = call(client, "GET", f"/v1/download/status/{job}", STATUS)
    assert queued["status"] == "queued" and "Retry-After" in response.headers
    response, _ = call(client, "GET", f"/v1/download/{job}", RESULT)
    assert response.status_code == 409

    drain(__import__("app").process_work, stack["WorkQueueUrl"])
    _, done = call(client, "GET", f"/v1/download/status/{job}?include=files", STATUS)
    assert done["status"] == "completed" and done["downloadUrl"]
    assert {f["status"] for f in done["files"]} == {"available", "unavailable"}
    response, _ = call(client, "GET", f"/v1/download/{job}", RESULT)
    assert response.status_code == 302
    response, _ = call(client, "DELETE", f"/v1/download/{job}", RESULT)
    assert response.status_code == 409


def test_idempotency_key_replay_and_reuse(client):
    first, _ = initiate(client, [70000], **{"Idempotency-Key": "k-1"})
    replay, _ = initiate(client, [70000], **{"Idempotency-Key": "k-1"})
    reused, _ = initiate(client, [70007], **{"Idempotency-Key": "k-1"})
    assert (first.status_code, replay.status_code, reused.status_code) == (202, 200, 422)


def test_cancel(client):
    _, accepted = initiate(client, [70000])
    response, cancelled = call(client, "DELETE", f"/v1/download/{accepted['jobId']}", RESULT)
    assert response.status_code == 200 and cancelled["status"] == "cancelled"


def test_check_available_and_unavailable(client, stack):
    put_source(stack["BucketName"], 70000)
    _, available = call(client, "POST", "/v1/download/check", body={"file_id": 70000})
    _, missing = call(client, "POST", "/v1/download/check", body={"file_id": 70001})
    assert available["available"] and not missing["available"]


def test_start_answers_202_when_the_file_is_not_ready_in_time(client, monkeypatch):
    monkeypatch.setenv("START_WAIT_MS", "0")
    runtime.reset()
    response, document = call(client, "POST", "/v1/download/start", body={"file_id": 70000})
    assert response.status_code == 202 and response.headers["Location"] == document["statusUrl"]


def test_start_answers_200_when_the_file_is_ready_in_time(client, stack):
    """The wait loop's sleep runs the worker, as the consumers would meanwhile."""
    import app

    put_source(stack["BucketName"], 70000)
    settings = runtime.settings()
    clients = make_clients(API_CONFIG)
    runtime.override(
        service=DownloadService(
            JobStore(clients.dynamodb.Table(settings.jobs_table), settings.job_ttl_seconds),
            WorkQueue(clients.sqs, settings.work_queue_url),
            Storage(clients.s3, settings.bucket),
            settings,
            sleep=lambda _seconds: drain(app.process_work, stack["WorkQueueUrl"]),
        )
    )
    response, result = call(client, "POST", "/v1/download/start", body={"file_id": 70000})
    assert response.status_code == 200 and result["status"] == "completed" and result["downloadUrl"]


@pytest.mark.parametrize(
    "method, path, route, body, headers, status",
    [
        ("GET", "/v1/download/status/not-a-uuid", STATUS, None, {}, 400),
        ("GET", f"/v1/download/status/{UNKNOWN_JOB}", STATUS, None, {}, 404),
        ("GET", f"/v1/download/status/{UNKNOWN_JOB}?include=everything", STATUS, None, {}, 400),
        ("GET", f"/v1/download/{UNKNOWN_JOB}", RESULT, None, {}, 404),
        ("DELETE", f"/v1/download/{UNKNOWN_JOB}", RESULT, None, {}, 404),
        ("DELETE", "/v1/download/nope", RESULT, None, {}, 400),
        ("POST", "/v1/download/initiate", None, "{not json", {}, 400),
        ("POST", "/v1/download/initiate", None, {"file_ids": [9999]}, {}, 400),
        ("POST", "/v1/download/initiate", None, {"file_ids": []}, {}, 400),
        ("POST", "/v1/download/initiate", None, {"file_ids": list(range(10000, 11001))}, {}, 400),
        ("POST", "/v1/download/initiate", None, {"file_ids": [70000]}, {"Idempotency-Key": " "}, 400),
        ("POST", "/v1/download/initiate", None, "[" + "1" * 70000 + "]", {}, 413),
        ("POST", "/v1/download/initiate", None, "file_ids=1", {"Content-Type": "text/plain"}, 415),
        ("GET", f"/v1/download/status/{UNKNOWN_JOB}", STATUS, None, {"Content-Type": "text/plain"}, 415),
        ("POST", "/v1/download/check", None, {"file_id": True}, {}, 400),
        ("POST", "/v1/download/start", None, {}, {}, 400),
    ],
)
def test_errors_are_documented_with_the_error_shape(client, method, path, route, body, headers, status):
    response, error = call(client, method, path, route, body, headers)
    assert response.status_code == status
    assert error["requestId"] == response.headers["X-Request-ID"]


def test_unknown_paths_and_methods_get_404_and_405_in_the_error_shape(client):
    unknown = client.http.get("/no/such/path")
    wrong_method = client.http.put("/v1/download/initiate", headers=JSON, body="{}")
    assert (unknown.status_code, wrong_method.status_code) == (404, 405)
    assert wrong_method.headers["Allow"] == "POST"
    for response in (unknown, wrong_method):
        assert set(json.loads(response.body)) == {"error", "message", "requestId"}


def test_rate_limited_requests_get_a_documented_429(client, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    monkeypatch.setenv("RATE_LIMIT_MAX_REQUESTS", "1")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_MS", "3600000")
    runtime.reset()
    allowed, _ = call(client, "GET", "/")
    limited, _ = call(client, "GET", "/")
    assert (allowed.status_code, limited.status_code) == (200, 429)
    assert allowed.headers["RateLimit-Remaining"] == "0"


def test_an_unreachable_dependency_is_a_documented_503(client, monkeypatch):
    monkeypatch.setenv("S3_BUCKET_NAME", "no-such-bucket")
    runtime.reset()
    response, health = call(client, "GET", "/health")
    assert response.status_code == 503 and health["checks"]["storage"] == "error"
    response, error = call(client, "POST", "/v1/download/check", body={"file_id": 70000})
    assert response.status_code == 503 and error["message"].startswith("storage is unavailable")


def test_conditional_reads_and_the_event_stream_are_documented(client):
    stream_route = "/v1/download/stream/{job_id}"
    _, accepted = initiate(client, [70000])
    job = accepted["jobId"]
    response, _ = call(client, "GET", f"/v1/download/status/{job}", STATUS)
    conditional = {"If-None-Match": response.headers["ETag"], "Prefer": "wait=0"}

    not_modified, _ = call(client, "GET", f"/v1/download/status/{job}", STATUS, headers=conditional)
    call(client, "DELETE", f"/v1/download/{job}", RESULT)
    changed, _ = call(client, "GET", f"/v1/download/status/{job}", STATUS, headers=conditional)
    streamed, events = call(client, "GET", f"/v1/download/stream/{job}?include=files", stream_route)
    unknown, _ = call(client, "GET", f"/v1/download/stream/{UNKNOWN_JOB}", stream_route)

    assert (not_modified.status_code, changed.status_code, streamed.status_code) == (304, 200, 200)
    assert "event: connected\n" in events and events.endswith("\n\n") and "event: cancelled\n" in events
    assert unknown.status_code == 404


def test_docs_page_renders_the_live_operations(client):
    _, page = call(client, "GET", "/docs")
    assert 'id="streamDownloadStatus"' in page and "Preference-Applied" in page


def test_the_job_listing(client, mode):
    initiate(client, [70000])
    response, listing = call(client, "GET", "/v1/download/jobs?limit=1&status=queued", "/v1/download/jobs")
    if mode == "none":
        assert response.status_code == 403
    else:
        assert response.status_code == 200 and [job["status"] for job in listing["jobs"]] == ["queued"]
        response, _ = call(client, "GET", "/v1/download/jobs?cursor=bogus", "/v1/download/jobs")
        assert response.status_code == 400


@pytest.mark.parametrize("headers", [{"Authorization": ""}, {"Authorization": "Bearer dlk_unknown"}])
def test_a_missing_or_unknown_key_is_a_documented_401(client, mode, headers):
    response, error = call(client, "GET", f"/v1/download/status/{UNKNOWN_JOB}", STATUS, headers=headers)
    if mode == "api-key":
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        assert error["requestId"] == response.headers["X-Request-ID"]
    else:
        assert response.status_code == 404  # no key needed, none checked
