"""Tracing, structured logs and shared rate limiting, as an operator sees them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from chalice.test import Client

from chalicelib import logs, runtime
from tests.support.aws import drain, put_source

JSON = {"Content-Type": "application/json"}


class MemoryEmitter(UDPEmitter):
    """Keeps every segment the SDK would have sent to the daemon."""

    def __init__(self):
        super().__init__()
        self.segments = []

    def send_entity(self, entity):
        self.segments.append(json.loads(entity.serialize()))


@pytest.fixture
def emitter(stack, monkeypatch):
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "true")
    global_sdk_config.set_sdk_enabled(True)
    memory = MemoryEmitter()
    xray_recorder.configure(emitter=memory, sampling=False, context_missing="IGNORE_ERROR")
    runtime.reset()
    yield memory
    global_sdk_config.set_sdk_enabled(False)


def _subsegment_names(segment):
    names = []
    for sub in segment.get("subsegments", []):
        names.append(sub["name"])
        names.extend(_subsegment_names(sub))
    return names


def test_one_trace_follows_a_job_from_the_api_through_every_file_to_the_bundle(stack, emitter):
    import app

    put_source(stack["BucketName"], 70000)
    put_source(stack["BucketName"], 70007)
    with Client(app.app) as client:
        response = client.http.post(
            "/v1/download/initiate", headers=JSON, body=json.dumps({"file_ids": [70000, 70007]})
        )
        job_id = json.loads(response.body)["jobId"]
        drain(app.process_work, stack["WorkQueueUrl"])

    segments = [s for s in emitter.segments if s["name"].startswith("delineate-")]
    by_name = {}
    for segment in segments:
        by_name.setdefault(segment["name"], []).append(segment)
    api = next(s for s in by_name["delineate-api"] if s["annotations"].get("jobId") == job_id)
    # one trace id across every hop
    assert {
        s["trace_id"] for s in by_name["delineate-job"] + by_name["delineate-file"] + by_name["delineate-bundle"]
    } == {api["trace_id"]}
    # each hop is a child of the one that sent its message
    job = by_name["delineate-job"][0]
    assert job["parent_id"] == api["id"] and job["annotations"]["jobId"] == job_id
    files = by_name["delineate-file"]
    assert sorted(f["annotations"]["fileId"] for f in files) == [70000, 70007]
    assert all(f["parent_id"] == job["id"] for f in files)
    bundle = by_name["delineate-bundle"][0]
    assert bundle["parent_id"] in {f["id"] for f in files}
    # boto3 calls are traced as subsegments
    assert {"sqs", "dynamodb"} <= set(_subsegment_names(api))
    assert "s3" in _subsegment_names(bundle)


def test_logs_are_one_json_line_per_event_with_ids(stack, monkeypatch, capfd):
    import app

    monkeypatch.setenv("LOG_LEVEL", "INFO")
    logs.configure()
    try:
        put_source(stack["BucketName"], 70000)
        with Client(app.app) as client:
            response = client.http.post(
                "/v1/download/initiate",
                headers={**JSON, "X-Request-ID": "req-42"},
                body=json.dumps({"file_ids": [70000]}),
            )
            drain(app.process_work, stack["WorkQueueUrl"])
    finally:
        logs.configure("WARNING")
    job_id = json.loads(response.body)["jobId"]
    printed = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.strip()]  # JSON only
    lines = [line for line in printed if "_aws" not in line]  # log lines; the rest are EMF metrics
    assert any(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Delineate" for line in printed if "_aws" in line)
    request = next(line for line in lines if line["message"] == "request")
    assert request["requestId"] == "req-42" and request["status"] == 202 and request["level"] == "INFO"
    assert request["durationMs"] >= 0
    handled = [line for line in lines if line["message"] == "work message handled"]
    assert any(line.get("fileId") == 70000 and line["jobId"] == job_id for line in handled)
    assert len([line for line in lines if line["message"] == "request"]) == 1  # one line per event


def test_logs_are_quiet_by_default():
    assert logs.configure().level == logging.WARNING or logging.getLogger("delineate").level == logging.WARNING


@pytest.fixture
def limited(stack, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    monkeypatch.setenv("RATE_LIMIT_MAX_REQUESTS", "3")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_MS", "60000")
    runtime.reset()
    yield


def test_rate_limit_headers_count_down_then_429_with_retry_after(limited):
    import app

    with Client(app.app) as client:
        answers = [client.http.get("/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["RateLimit-Limit"] == "3" for a in answers)
    blocked = answers[-1]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    body = json.loads(blocked.body)
    assert body["error"] == "Too Many Requests" and body["requestId"] == blocked.headers["X-Request-ID"]


def test_rate_limit_is_shared_through_dynamodb_not_process_memory(limited):
    """A second API instance (a fresh service graph) sees the first one's count."""
    import app

    with Client(app.app) as client:
        for _ in range(3):
            client.http.get("/")
        runtime.reset()  # as if a different Lambda container answered next
        assert client.http.get("/").status_code == 429


def test_rate_limiter_fails_open_when_its_table_is_unreachable(limited, monkeypatch):
    import app

    monkeypatch.setenv("JOBS_TABLE_NAME", "no-such-table")
    runtime.reset()
    with Client(app.app) as client:
        response = client.http.get("/")
    assert response.status_code == 200
    assert response.headers["RateLimit-Limit"] == "3"


def test_a_fresh_process_prints_each_event_once_as_json():
    """As in Lambda: app.py is imported first, then logging is configured (Chalice must not add its own handler)."""
    script = (
        "import app, logging; from chalicelib import logs; logs.configure('INFO'); "
        "logging.getLogger('delineate.test').info('event', extra={'jobId': 'j-1'})"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "AWS_XRAY_SDK_ENABLED": "false"},
    )

    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["jobId"] == "j-1"
