"""Routes through Chalice's test client: every bad input is a 4xx in the error shape, and the happy paths."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from chalice.test import Client

import app
from tests.support.aws import drain, put_source

UNKNOWN_JOB = "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(deployed):
    with Client(app.app) as test_client:
        yield test_client


def post(client, path, body, headers=JSON):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post(path, body=raw, headers=headers)


def assert_error(response, status):
    assert response.status_code == status, response.body
    body = json.loads(response.body)
    assert set(body) >= {"error", "message", "requestId"}
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert b"Traceback" not in response.body
    return body


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{not json",
        "[70000]",
        "null",
        '"file_ids"',
        {},
        {"file_ids": None},
        {"file_ids": 70000},
        {"file_ids": "70000"},
        {"file_ids": []},
        {"file_ids": [True]},
        {"file_ids": [70000.5]},
        {"file_ids": ["70000"]},
        {"file_ids": [None]},
        {"file_ids": [9999]},
        {"file_ids": [100000001]},
        {"file_ids": [-70000]},
        {"file_ids": list(range(10000, 11001))},
    ],
    ids=repr,
)
def test_initiate_rejects_bad_bodies_with_400(client, body):
    assert_error(post(client, "/v1/download/initiate", body), 400)


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/download/initiate", {"file_ids": [70000], "callback_url": "https://example.com/h"}, "callback_url"),
        ("/v1/download/check", {"file_id": 70000, "verbose": True}, "verbose"),
        ("/v1/download/start", {"file_id": 70000, "fileId": 70000}, "fileId"),
    ],
)
def test_json_routes_answer_an_unknown_field_with_400_naming_it(client, path, body, field):
    error = assert_error(post(client, path, body), 400)
    assert error["message"].startswith(f"{field}: unknown field")


@pytest.mark.parametrize("path", ["/v1/download/initiate", "/v1/download/check", "/v1/download/start"])
def test_json_routes_refuse_other_content_types_with_415(client, path):
    assert_error(post(client, path, "file_ids=70000", {"Content-Type": "text/plain"}), 415)


@pytest.mark.parametrize("path", ["/v1/download/initiate", "/v1/download/check", "/v1/download/start"])
@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")], ids=["arrays", "objects"])
def test_deeply_nested_json_under_the_size_limit_is_400_not_500(client, path, opening, closing):
    depth = 40_000 // len(opening + closing)  # about 40 KB, under MAX_BODY_BYTES
    response = post(client, path, opening * depth + "1" + closing * depth)
    assert_error(response, 400)
    assert "nested too deeply" in response.json_body["message"]


def test_oversized_body_is_413(client):
    assert_error(post(client, "/v1/download/initiate", "[" + "1," * 40000 + "1]"), 413)


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/no/such/path", 404),
        ("GET", "/v1/download/status/not-a-uuid", 400),
        ("GET", f"/v1/download/status/{UNKNOWN_JOB}", 404),
        ("GET", f"/v1/download/{UNKNOWN_JOB}", 404),
        ("DELETE", f"/v1/download/{UNKNOWN_JOB}", 404),
        ("DELETE", "/v1/download/..%2F..", 400),
        ("PUT", "/v1/download/initiate", 405),
        ("GET", "/v1/download/initiate", 405),
    ],
)
def test_bad_paths_and_methods_answer_in_the_error_shape(client, method, path, status):
    assert_error(client.http.request(method, path, headers={}, body=b""), status)


def test_check_with_a_bad_file_id_is_400(client):
    assert_error(post(client, "/v1/download/check", {"file_id": "70000"}), 400)


def test_duplicated_ids_are_collapsed(client):
    response = post(client, "/v1/download/initiate", {"file_ids": [70000, 70000, 70007, 70000]})
    assert response.status_code == 202
    assert json.loads(response.body)["totalFileIds"] == 2


def test_same_idempotency_key_returns_the_same_job_and_another_body_is_422(client):
    key = {**JSON, "Idempotency-Key": "k-1"}
    first = post(client, "/v1/download/initiate", {"file_ids": [70000]}, key)
    again = post(client, "/v1/download/initiate", {"file_ids": [70000]}, key)
    other = post(client, "/v1/download/initiate", {"file_ids": [70007]}, key)

    assert first.status_code == 202 and again.status_code in (200, 202)
    assert json.loads(again.body)["jobId"] == json.loads(first.body)["jobId"]
    assert_error(other, 422)


def test_job_runs_to_a_bundle_of_exactly_the_available_files(client, deployed):
    sources = {f"{file_id}.zip": put_source(deployed.bucket, file_id) for file_id in (70000, 70007)}
    accepted = post(client, "/v1/download/initiate", {"file_ids": [70000, 70007, 70001]})
    job_id = json.loads(accepted.body)["jobId"]
    assert accepted.status_code == 202
    assert accepted.headers["Location"] == f"/v1/download/status/{job_id}"

    queued = client.http.get(f"/v1/download/status/{job_id}")
    assert json.loads(queued.body)["status"] == "queued" and "Retry-After" in queued.headers
    not_ready = client.http.get(f"/v1/download/{job_id}")
    assert not_ready.status_code == 409 and json.loads(not_ready.body)["jobId"] == job_id

    drain(app.process_work, deployed.queue_url)

    status = json.loads(client.http.get(f"/v1/download/status/{job_id}?include=files").body)
    assert (status["status"], status["completedFiles"], status["availableFiles"]) == ("completed", 3, 2)
    assert {item["fileId"]: item["status"] for item in status["files"]} == {
        70000: "available",
        70007: "available",
        70001: "unavailable",
    }
    redirect = client.http.get(f"/v1/download/{job_id}")
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith("http")
    bundle = boto3.client("s3").get_object(Bucket=deployed.bucket, Key=deployed.published_key(job_id))["Body"].read()
    archive = zipfile.ZipFile(io.BytesIO(bundle))
    assert {name: archive.read(name) for name in archive.namelist()} == sources
    assert_error(client.http.delete(f"/v1/download/{job_id}"), 409)


def test_cancel_answers_the_cancelled_status_document(client):
    job_id = json.loads(post(client, "/v1/download/initiate", {"file_ids": [70000]}).body)["jobId"]

    response = client.http.delete(f"/v1/download/{job_id}")

    assert response.status_code == 200
    assert json.loads(response.body)["status"] == "cancelled"


def test_check_reports_availability_and_size(client, deployed):
    source = put_source(deployed.bucket, 70000)

    present = json.loads(post(client, "/v1/download/check", {"file_id": 70000}).body)
    absent = json.loads(post(client, "/v1/download/check", {"file_id": 70001}).body)

    assert present == {"file_id": 70000, "available": True, "s3Key": "downloads/70000.zip", "size": len(source)}
    assert absent["available"] is False


def test_health_names_every_dependency(client):
    response = client.http.get("/health")
    assert response.status_code == 200
    assert json.loads(response.body) == {
        "status": "healthy",
        "checks": {"storage": "ok", "database": "ok", "queue": "ok"},
    }
