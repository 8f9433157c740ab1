"""chalicelib/api/live.py: versions, the conditional headers, the hold loop and one bounded SSE response."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from chalicelib.api import live
from chalicelib.models import Job, JobStatus

MOMENT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def a_job(**changes) -> Job:
    job = Job("3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d", JobStatus.QUEUED, (70000, 70007), MOMENT, MOMENT, MOMENT)
    return dataclasses.replace(job, **changes)


class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps; each sleep may change the job."""

    def __init__(self, jobs: list[Job]) -> None:
        self.now, self.sleeps, self.jobs, self.reads = 0.0, [], list(jobs), 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def read(self) -> Job:
        """The next job of the script, once per read; the last one stays."""
        self.reads += 1
        return self.jobs.pop(0) if len(self.jobs) > 1 else self.jobs[0]


# -- versions --------------------------------------------------------------------------


def test_a_version_changes_with_what_a_client_sees_and_not_with_the_signed_url():
    """The URL is signed anew on every read (never stored), so the version is built without it."""
    job = a_job(status=JobStatus.COMPLETED, result_key="results/x/1.zip", size=10)

    read_again = dataclasses.replace(job)
    counted = dataclasses.replace(job, completed_files=1)
    rebuilt = dataclasses.replace(job, result_key="results/x/2.zip")

    assert live.version_of(read_again, False) == live.version_of(job, False)
    assert live.version_of(counted, False) != live.version_of(job, False)
    assert live.version_of(rebuilt, False) != live.version_of(job, False)


def test_each_representation_has_its_own_version():
    assert live.version_of(a_job(), True) != live.version_of(a_job(), False)


# -- conditional headers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "header, wait",
    [
        ("wait=5", 5),
        ("respond-async, wait=100", live.MAX_WAIT_SECONDS),
        ("Wait = 3; x=y", 3),
        ('wait="7"', 7),
        ("wait=soon", None),
        ("return=minimal", None),
        ("", None),
        (None, None),
    ],
)
def test_prefer_wait_is_read_leniently_and_clamped(header, wait):
    assert live.parse_prefer_wait(header) == wait


def test_if_none_match_lists_tags_and_compares_weakly():
    assert live.parse_if_none_match('"abc", W/"def"') == {"abc", "def"}
    assert live.Condition(live.parse_if_none_match("*")).matches("anything")
    assert not live.Condition().matches("abc")


def test_a_hold_never_runs_past_the_request_budget_less_its_margin():
    assert live.hold_seconds(20, 30000) == 20
    assert live.hold_seconds(20, 4000) == 3
    assert live.hold_seconds(20, 500) == 0


# -- the hold loop ---------------------------------------------------------------------


def test_a_change_is_returned_at_the_next_read_and_reads_grow_apart_up_to_a_second():
    script = [a_job()] * 8 + [a_job(status=JobStatus.PROCESSING)]
    time = FakeTime(script)
    seen = live.version_of(a_job(), False)

    changed = live.wait_for_change(time.read, lambda j: live.version_of(j, False), seen, 20, time.sleep, time.clock)

    assert changed is not None and changed.status is JobStatus.PROCESSING
    assert time.sleeps[0] == live.FIRST_INTERVAL and max(time.sleeps) == live.MAX_INTERVAL
    assert time.sleeps == sorted(time.sleeps)


def test_no_change_before_the_deadline_is_none_at_the_deadline():
    time = FakeTime([a_job()])
    seen = live.version_of(a_job(), False)

    changed = live.wait_for_change(time.read, lambda j: live.version_of(j, False), seen, 5, time.sleep, time.clock)

    assert changed is None and time.now == pytest.approx(5)


# -- one SSE response ------------------------------------------------------------------


def events_of(body: str) -> list[dict]:
    """The events of an event-stream body, as a plain HTTP client parses them."""
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append({"event": fields["event"], "id": fields["id"], "data": json.loads(fields["data"])})
    return events


def stream(time: FakeTime) -> live.EventStream:
    return live.EventStream(
        read=time.read,
        render=lambda job, file_urls: {"status": job.status.value, "completedFiles": job.completed_files},
        version=lambda job: live.version_of(job, False),
        retry_ms=1000,
        sleep=time.sleep,
        clock=time.clock,
    )


def test_the_first_response_is_connected_at_once():
    job = a_job(status=JobStatus.PROCESSING)
    time = FakeTime([dataclasses.replace(job, completed_files=1)])

    body = stream(time).body(job, None, deadline=20)

    assert body.startswith("retry: 1000\n\n")
    assert [(e["event"], e["id"]) for e in events_of(body)] == [("connected", live.version_of(job, False))]
    assert time.now == 0 and time.reads == 0


def test_a_reconnect_follows_each_change_and_ends_at_the_terminal_event():
    first = a_job(status=JobStatus.PROCESSING)
    later = [dataclasses.replace(first, completed_files=1), a_job(status=JobStatus.COMPLETED, completed_files=2)]
    time = FakeTime(later)

    events = events_of(stream(time).body(first, live.version_of(first, False), deadline=20))

    assert [(e["event"], e["data"]["completedFiles"]) for e in events] == [("progress", 1), ("completed", 2)]
    assert [e["id"] for e in events] == [live.version_of(j, False) for j in later]
    assert time.now < 20


def test_a_stream_ends_at_its_bound_and_a_reconnect_at_the_current_version_repeats_nothing():
    job = a_job(status=JobStatus.PROCESSING)
    time = FakeTime([job])

    body = stream(time).body(job, live.version_of(job, False), deadline=20)

    assert events_of(body) == [] and body == "retry: 1000\n\n"
    assert time.now == pytest.approx(20)


def test_a_reconnect_after_the_terminal_event_gets_the_terminal_event_again():
    done = a_job(status=JobStatus.CANCELLED)
    time = FakeTime([done])

    events = events_of(stream(time).body(done, live.version_of(done, False), deadline=20))

    assert [e["event"] for e in events] == ["cancelled"] and time.reads == 0


def test_a_stream_for_a_finished_job_sends_connected_and_the_terminal_event_at_once():
    done = a_job(status=JobStatus.FAILED, error="no files")
    time = FakeTime([done])

    events = events_of(stream(time).body(done, None, deadline=20))

    assert [e["event"] for e in events] == ["connected", "failed"] and events[0]["id"] == events[1]["id"]
    assert time.now == 0


def test_a_change_missed_while_reconnecting_is_a_progress_event_not_a_new_connected():
    before = a_job(status=JobStatus.PROCESSING)
    now = dataclasses.replace(before, completed_files=1)
    time = FakeTime([now, a_job(status=JobStatus.COMPLETED, completed_files=2)])

    events = events_of(stream(time).body(now, live.version_of(before, False), deadline=20))

    assert [(e["event"], e["data"]["completedFiles"]) for e in events] == [("progress", 1), ("completed", 2)]


def test_a_reconnect_to_a_job_that_finished_meanwhile_gets_only_the_terminal_event():
    done = a_job(status=JobStatus.COMPLETED, completed_files=2)

    events = events_of(stream(FakeTime([done])).body(done, "an-older-version", deadline=20))

    assert [e["event"] for e in events] == ["completed"]


def test_with_no_hold_a_reconnect_at_the_current_version_answers_that_state_once_and_ends():
    """LONG_POLL_MAX_SECONDS=0: no invocation waits; each response carries one event, then EventSource's retry."""
    job = a_job(status=JobStatus.PROCESSING)
    time = FakeTime([job])

    events = events_of(stream(time).body(job, live.version_of(job, False), deadline=0))

    assert [(e["event"], e["id"]) for e in events] == [("progress", live.version_of(job, False))]
    assert time.now == 0 and time.reads == 0


# -- the byte bound ---------------------------------------------------------------------

URL = "https://bucket.s3.amazonaws.com/downloads/70000.zip?" + "X" * 1000  # about what S3 signs per file


def thousand_files(job: Job, file_urls: bool) -> dict:
    """A 1,000-file status document as `?include=files` renders it: a signed URL per available file."""
    done = job.completed_files
    files = [
        {"fileId": 10000 + n, "status": "available" if n < done else "pending", "downloadUrl": None}
        for n in range(1000)
    ]
    for entry in files[:done]:
        entry["downloadUrl"] = URL if file_urls else None
    return {"status": job.status.value, "completedFiles": done, "files": files}


def test_a_thousand_file_job_streams_under_a_mebibyte_per_response_with_urls_only_at_the_end():
    steps = [a_job(status=JobStatus.PROCESSING, completed_files=n) for n in range(0, 1000, 10)]
    time = FakeTime([*steps[1:], a_job(status=JobStatus.COMPLETED, completed_files=1000)])
    events = live.EventStream(
        time.read, thousand_files, lambda j: live.version_of(j, True), 1000, time.sleep, time.clock
    )
    bodies, last_id = [events.body(steps[0], None, deadline=20)], None

    while not events_of(bodies[-1]) or events_of(bodies[-1])[-1]["event"] != "completed":
        last_id = events_of(bodies[-1])[-1]["id"] if events_of(bodies[-1]) else last_id
        bodies.append(events.body(time.read(), last_id, deadline=time.now + 20))
        assert len(bodies) < 200

    sizes = [len(body.encode()) for body in bodies]
    received = [event for body in bodies for event in events_of(body)]
    assert max(sizes[:-1]) <= live.STREAM_MAX_BYTES  # the terminal response may be one document on its own
    assert len(events_of(bodies[-1])) == 1 or sizes[-1] <= live.STREAM_MAX_BYTES
    assert all(f["downloadUrl"] is None for e in received[:-1] for f in e["data"]["files"])
    assert received[-1]["event"] == "completed"
    assert all(f["downloadUrl"] == URL for f in received[-1]["data"]["files"])
    assert [e["data"]["completedFiles"] for e in received] == sorted(e["data"]["completedFiles"] for e in received)


def test_an_event_that_would_pass_the_byte_bound_ends_the_response_and_the_reconnect_resumes_with_it():
    first = a_job(status=JobStatus.PROCESSING)
    later = [dataclasses.replace(first, completed_files=n) for n in (1, 2, 2)] + [a_job(status=JobStatus.COMPLETED)]
    time = FakeTime(later)  # the change to 2 does not fit; the job is still there when the client reconnects
    one_event = len(
        live.sse_event("progress", live.version_of(first, False), {"status": "processing", "completedFiles": 1})
    )
    small = dataclasses.replace(stream(time), max_bytes=len("retry: 1000\n\n") + one_event + 10)

    body = small.body(first, live.version_of(first, False), deadline=20)
    resumed = small.body(time.read(), events_of(body)[-1]["id"], deadline=time.now + 20)

    assert [e["data"]["completedFiles"] for e in events_of(body)] == [1]
    assert len(body.encode()) <= small.max_bytes
    assert [(e["event"], e["data"]["completedFiles"]) for e in events_of(resumed)] == [("progress", 2)]
    ended = small.body(time.read(), events_of(resumed)[-1]["id"], deadline=time.now + 20)
    assert [e["event"] for e in events_of(ended)] == ["completed"]
