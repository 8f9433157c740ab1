"""Long-poll and the SSE stream through Chalice's test client, on the moto stack.

A held request's sleeps are where the rest of the system moves on: the tests
hand the service a sleep that cancels the job or runs the worker, as another
request or the consumers would meanwhile.
"""

from __future__ import annotations

import json
import time

import pytest
from chalice.test import Client

import app
from chalicelib import runtime
from chalicelib.api.service import DownloadService
from chalicelib.aws.clients import API_CONFIG, make_clients
from chalicelib.aws.queue import WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.jobs.items import file_item, job_key
from chalicelib.jobs.store import JobStore
from chalicelib.models import FileResult, FileStatus, utc_now
from tests.support.aws import delete_records, drain, put_source, receive_records
from tests.unit.api.test_live import events_of

UNKNOWN_JOB = "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"


@pytest.fixture
def client(deployed):
    with Client(app.app) as test_client:
        yield test_client


def service_sleeping_with(action) -> None:
    """The API's service, whose every sleep in a hold runs `action` first."""
    settings = runtime.settings()
    clients = make_clients(API_CONFIG)
    runtime.override(
        service=DownloadService(
            JobStore(clients.dynamodb.Table(settings.jobs_table), settings.job_ttl_seconds),
            WorkQueue(clients.sqs, settings.work_queue_url),
            Storage(clients.s3, settings.bucket),
            settings,
            sleep=lambda seconds: action(),
        )
    )


def one_worker_round(queue_url: str) -> None:
    """The worker handles what is queued now (one receive), so a job moves one step per sleep."""
    records = receive_records(queue_url)
    if records:
        app.process_work({"Records": records}, None)
        delete_records(queue_url, records)


def start_job(client, *file_ids: int) -> str:
    response = client.http.post(
        "/v1/download/initiate",
        body=json.dumps({"file_ids": list(file_ids)}),
        headers={"Content-Type": "application/json"},
    )
    return json.loads(response.body)["jobId"]


def get_status(client, job_id: str, **headers):
    return client.http.get(f"/v1/download/status/{job_id}", headers=headers)


# -- ETag and If-None-Match ------------------------------------------------------------


def test_status_carries_a_strong_etag_and_an_unchanged_job_answers_304(client):
    job_id = start_job(client, 70000)
    first = get_status(client, job_id)
    tag = first.headers["ETag"]

    again = get_status(client, job_id, **{"If-None-Match": tag})
    other = get_status(client, job_id, **{"If-None-Match": '"something-else"'})

    assert tag.startswith('"') and not tag.startswith("W/")
    assert (again.status_code, again.body, again.headers["ETag"]) == (304, b"", tag)
    assert again.headers["Retry-After"] and "Preference-Applied" not in again.headers
    assert other.status_code == 200 and json.loads(other.body)["jobId"] == job_id


def test_the_etag_changes_when_the_document_does(client, deployed):
    job_id = start_job(client, 70000)
    queued = get_status(client, job_id).headers["ETag"]

    drain(app.process_work, deployed.queue_url)
    done = get_status(client, job_id, **{"If-None-Match": queued})

    assert done.status_code == 200 and done.headers["ETag"] != queued
    assert json.loads(done.body)["status"] == "completed"


# -- long-poll -------------------------------------------------------------------------


def test_a_held_status_read_answers_the_change_with_the_new_document(client, deployed):
    job_id = start_job(client, 70000)
    tag = get_status(client, job_id).headers["ETag"]
    service_sleeping_with(lambda: deployed.store().cancel(job_id))

    response = get_status(client, job_id, **{"If-None-Match": tag, "Prefer": "wait=10"})

    assert response.status_code == 200 and json.loads(response.body)["status"] == "cancelled"
    assert response.headers["Preference-Applied"] == "wait=10" and response.headers["ETag"] != tag
    assert "Retry-After" not in response.headers


def test_a_held_status_read_without_a_change_answers_304_with_retry_after_when_the_wait_ends(client, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_MS", "1600")  # a hold of 0.6 s, the request budget less its margin
    runtime.reset()
    job_id = start_job(client, 70000)
    tag = get_status(client, job_id).headers["ETag"]
    started = time.monotonic()

    response = get_status(client, job_id, **{"If-None-Match": tag, "Prefer": "wait=20"})

    assert 0.5 <= time.monotonic() - started < 1.6
    assert response.status_code == 304 and response.headers["Retry-After"]
    assert response.headers["Preference-Applied"] == "wait=0"


def test_larger_waits_are_clamped_and_a_finished_job_is_never_held(client, deployed):
    job_id = start_job(client, 70000)
    drain(app.process_work, deployed.queue_url)
    tag = get_status(client, job_id).headers["ETag"]
    started = time.monotonic()

    response = get_status(client, job_id, **{"If-None-Match": tag, "Prefer": "respond-async, wait=600"})

    assert time.monotonic() - started < 1
    assert response.status_code == 304 and response.headers["Preference-Applied"] == "wait=20"
    assert "Retry-After" not in response.headers


def no_hold(monkeypatch) -> list:
    """LONG_POLL_MAX_SECONDS=0, as the prod stage sets it; returns the sleeps a request took."""
    monkeypatch.setenv("LONG_POLL_MAX_SECONDS", "0")
    runtime.reset()
    sleeps: list = []
    service_sleeping_with(lambda: sleeps.append(1))
    return sleeps


def test_with_no_hold_a_long_poll_answers_at_once_with_retry_after(client, monkeypatch):
    sleeps = no_hold(monkeypatch)
    job_id = start_job(client, 70000)
    tag = get_status(client, job_id).headers["ETag"]

    response = get_status(client, job_id, **{"If-None-Match": tag, "Prefer": "wait=20"})

    assert response.status_code == 304 and sleeps == []
    assert response.headers["Preference-Applied"] == "wait=0"
    assert response.headers["Retry-After"] == str(runtime.settings().status_retry_after_seconds)


def test_with_no_hold_each_stream_response_is_one_event_at_once(client, monkeypatch):
    sleeps = no_hold(monkeypatch)
    job_id = start_job(client, 70000)
    first = events_of(client.http.get(f"/v1/download/stream/{job_id}").body.decode())

    again = client.http.get(f"/v1/download/stream/{job_id}", headers={"Last-Event-ID": first[-1]["id"]})

    assert [e["event"] for e in first] == ["connected"]
    assert [(e["event"], e["id"]) for e in events_of(again.body.decode())] == [("progress", first[-1]["id"])]
    assert again.body.decode().startswith("retry: ") and sleeps == []


def test_a_held_request_counts_once_for_the_rate_limit(client, deployed, monkeypatch):
    job_id = start_job(client, 70000)
    tag = get_status(client, job_id).headers["ETag"]
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    monkeypatch.setenv("RATE_LIMIT_MAX_REQUESTS", "5")
    monkeypatch.setenv("RATE_LIMIT_WINDOW_MS", "3600000")
    runtime.reset()
    reads = []
    service_sleeping_with(lambda: reads.append(1) if len(reads) < 5 else deployed.store().cancel(job_id))

    held = get_status(client, job_id, **{"If-None-Match": tag, "Prefer": "wait=10"})

    assert held.status_code == 200 and len(reads) == 5
    assert held.headers["RateLimit-Remaining"] == "4"


# -- the SSE stream --------------------------------------------------------------------


def test_the_stream_of_a_running_job_follows_it_to_completed(client, deployed):
    put_source(deployed.bucket, 70000)
    job_id = start_job(client, 70000, 70001)
    service_sleeping_with(lambda: one_worker_round(deployed.queue_url))

    first = client.http.get(f"/v1/download/stream/{job_id}?include=files")
    reconnect = {"Last-Event-ID": events_of(first.body.decode())[-1]["id"]}
    response = client.http.get(f"/v1/download/stream/{job_id}?include=files", headers=reconnect)

    assert (first.status_code, response.status_code) == (200, 200)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = events_of(first.body.decode()) + events_of(response.body.decode())
    assert events[0]["event"] == "connected" and events[0]["data"]["status"] == "queued"
    assert [e["event"] for e in events[1:-1]] == ["progress"] * (len(events) - 2)
    assert events[-1]["event"] == "completed" and events[-1]["data"]["downloadUrl"]
    assert {f["status"] for f in events[-1]["data"]["files"]} == {"available", "unavailable"}
    assert len({e["id"] for e in events}) == len(events)
    available = [e for e in events[:-1] for f in e["data"]["files"] if f["status"] == "available"]
    assert available and all(f["downloadUrl"] is None for e in events[:-1] for f in e["data"]["files"])
    assert [bool(f["downloadUrl"]) for f in events[-1]["data"]["files"]] == [True, False]


def test_a_thousand_file_jobs_stream_stays_within_a_mebibyte_per_response(client, deployed):
    """Lambda answers 502 past 6 MB; with per-file URLs in every event a 1,000-file job once sent 6.3 MB.

    Each sleep of a hold records the next 50 files as available, so the job moves in twenty
    steps. The items are written as JobStore.record_file writes them, in batches: moto copies
    the whole table for each transaction, and a thousand of them take minutes. No S3 work
    either: a URL is signed locally whether or not its object exists."""
    store, step = deployed.store(), 50
    job_id = deployed.create_job(*range(70000, 71000), processing=True).job_id
    pending = list(range(70000, 71000))

    def workers_move_on() -> None:
        now = utc_now()
        with deployed.table.batch_writer() as batch:
            for file_id in pending[:step]:
                batch.put_item(Item=file_item(job_id, FileResult(file_id, FileStatus.AVAILABLE, 16), now, now))
        deployed.table.update_item(
            Key=job_key(job_id),
            UpdateExpression="ADD completedFiles :n, availableFiles :n",
            ExpressionAttributeValues={":n": len(pending[:step])},
        )
        del pending[:step]
        if not pending:
            assert store.complete(job_id, "results/bundle.zip", 16_000)

    service_sleeping_with(workers_move_on)
    path = f"/v1/download/stream/{job_id}?include=files"
    bodies = [client.http.get(path).body.decode()]

    while not events_of(bodies[-1]) or events_of(bodies[-1])[-1]["event"] != "completed":
        last_id = next(e["id"] for body in reversed(bodies) for e in reversed(events_of(body)))
        bodies.append(client.http.get(path, headers={"Last-Event-ID": last_id}).body.decode())
        assert len(bodies) < 40

    sizes = [len(body.encode()) for body in bodies]
    print(f"\n1,000-file stream: {len(bodies)} responses, {sum(sizes)} bytes, largest {max(sizes)}")
    assert max(sizes) <= 1024 * 1024
    final = events_of(bodies[-1])[-1]["data"]
    assert final["completedFiles"] == 1000 and all(f["downloadUrl"] for f in final["files"])


def test_a_reconnect_with_the_terminal_id_gets_the_terminal_event_again(client, deployed):
    job_id = start_job(client, 70000)
    deployed.store().cancel(job_id)
    first = events_of(client.http.get(f"/v1/download/stream/{job_id}").body.decode())

    again = client.http.get(f"/v1/download/stream/{job_id}", headers={"Last-Event-ID": first[-1]["id"]})

    assert [e["event"] for e in first] == ["connected", "cancelled"]
    assert [e["event"] for e in events_of(again.body.decode())] == ["cancelled"]


def test_the_stream_of_an_unknown_job_is_a_404_in_the_error_shape(client):
    response = client.http.get(f"/v1/download/stream/{UNKNOWN_JOB}")

    assert response.status_code == 404 and set(json.loads(response.body)) == {"error", "message", "requestId"}
