"""Long-poll and the SSE stream against the real dev stack, read by a plain HTTP client."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.support.devstack import FAST_FILES, start_dev_stack

STATUS, STREAM = "/v1/download/status/{}", "/v1/download/stream/{}"
TERMINAL = {"completed", "failed", "cancelled"}


def initiate(stack, *file_ids: int) -> str:
    response = requests.post(stack.url("/v1/download/initiate"), json={"file_ids": list(file_ids)}, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def test_a_long_poll_returns_within_a_second_of_the_change(dev_stack):
    with dev_stack.consumers_paused():
        job_id = initiate(dev_stack, 70000)
        current = requests.get(dev_stack.url(STATUS.format(job_id)), timeout=10)
        cancelled_at: list[float] = []

        def cancel() -> None:
            assert requests.delete(dev_stack.url(f"/v1/download/{job_id}"), timeout=10).status_code == 200
            cancelled_at.append(time.monotonic())

        canceller = threading.Timer(3.0, cancel)  # the change, while the long-poll below is held
        started = time.monotonic()
        canceller.start()
        held = requests.get(
            dev_stack.url(STATUS.format(job_id)),
            headers={"If-None-Match": current.headers["ETag"], "Prefer": "wait=20"},
            timeout=30,
        )
        answered = time.monotonic()
        canceller.join()

    assert held.status_code == 200 and held.json()["status"] == "cancelled"
    assert held.headers["Preference-Applied"] == "wait=20" and held.headers["ETag"] != current.headers["ETag"]
    assert answered - started >= 2.5, "the request was held until the change"
    assert answered - cancelled_at[0] < 1.0


def long_poll_unchanged(stack, wait: int) -> tuple[requests.Response, float, str]:
    """A long-poll of a queued job that nothing changes (consumers paused): (answer, seconds taken, ETag sent)."""
    with stack.consumers_paused():
        job_id = initiate(stack, 70000)
        tag = requests.get(stack.url(STATUS.format(job_id)), timeout=10).headers["ETag"]
        started = time.monotonic()
        answer = requests.get(
            stack.url(STATUS.format(job_id)), headers={"If-None-Match": tag, "Prefer": f"wait={wait}"}, timeout=30
        )
        elapsed = time.monotonic() - started
        requests.delete(stack.url(f"/v1/download/{job_id}"), timeout=10)
    return answer, elapsed, tag


def test_a_long_poll_without_a_change_ends_with_304_and_retry_after(dev_stack):
    held, elapsed, tag = long_poll_unchanged(dev_stack, wait=2)

    assert held.status_code == 304 and held.content == b"" and held.headers["Retry-After"]
    assert held.headers["ETag"] == tag and held.headers["Preference-Applied"] == "wait=2"
    assert 2 <= elapsed < 4


def read_events(response: requests.Response) -> tuple[int | None, list[dict]]:
    """(retry, events) of one text/event-stream response, parsed as the WHATWG rules say for our fields."""
    retry, events, fields = None, [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "data" in fields:
                events.append({"event": fields.get("event", "message"), "id": fields.get("id"), **fields})
            fields = {}
        elif line.startswith("retry: "):
            retry = int(line[len("retry: ") :])
        elif ": " in line:
            name, value = line.split(": ", 1)
            fields[name] = value
    return retry, events


def follow_stream(stack, job_id: str, query: str = "") -> tuple[list[dict], list[float], str]:
    """Reconnects with Last-Event-ID, as EventSource does, until a terminal event:
    (events, seconds each response took, the last id)."""
    received: list[dict] = []
    took: list[float] = []
    last_event_id = None
    deadline = time.monotonic() + 60
    while not (received and received[-1]["event"] in TERMINAL) and time.monotonic() < deadline:
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        started = time.monotonic()
        url = stack.url(STREAM.format(job_id) + query)
        with requests.get(url, headers=headers, stream=True, timeout=30) as response:
            assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
            retry, events = read_events(response)
        took.append(time.monotonic() - started)
        assert retry and retry > 0
        received += events
        last_event_id = events[-1]["id"] if events else last_event_id
    assert last_event_id is not None
    return received, took, last_event_id


def test_a_plain_http_client_follows_the_stream_to_completed_by_reconnecting_with_last_event_id(dev_stack):
    job_id = initiate(dev_stack, 70000, 70007, 70014, 70001)

    received, _, last_event_id = follow_stream(dev_stack, job_id, "?include=files")

    names = [event["event"] for event in received]
    assert names[0] == "connected" and names[-1] == "completed", names
    assert set(names[1:-1]) <= {"progress"}
    final = json.loads(received[-1]["data"])
    assert final["status"] == "completed" and final["downloadUrl"] and final["availableFiles"] == 3
    assert sum(bool(entry["downloadUrl"]) for entry in final["files"]) == 3
    earlier = [entry for event in received[:-1] for entry in json.loads(event["data"])["files"]]
    assert all(entry["downloadUrl"] is None for entry in earlier)  # URLs ride only on the terminal event

    with requests.get(
        dev_stack.url(STREAM.format(job_id)), headers={"Last-Event-ID": last_event_id}, timeout=30
    ) as again:
        _, repeated = read_events(again)
    assert [event["event"] for event in repeated] == ["completed"]


# -- a stage that holds no request (LONG_POLL_MAX_SECONDS=0, as prod sets it) -----------------


@pytest.fixture(scope="module")
def no_hold_stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("nohold"), **FAST_FILES, LONG_POLL_MAX_SECONDS="0")
    yield stack
    stack.stop()


def test_with_no_hold_a_long_poll_answers_at_once_with_retry_after(no_hold_stack):
    answer, elapsed, _ = long_poll_unchanged(no_hold_stack, wait=20)

    assert answer.status_code == 304 and answer.headers["Retry-After"] == "2"
    assert answer.headers["Preference-Applied"] == "wait=0"
    assert elapsed < 1.5


def test_with_no_hold_each_stream_response_answers_at_once_and_the_client_still_reaches_completed(no_hold_stack):
    job_id = initiate(no_hold_stack, 70000, 70007)

    received, took, _ = follow_stream(no_hold_stack, job_id)

    names = [event["event"] for event in received]
    assert names[0] == "connected" and names[-1] == "completed", names
    assert set(names[1:-1]) <= {"progress"}
    assert max(took) < 1.5, took  # nothing waits in the API: the client's retry: paces it
