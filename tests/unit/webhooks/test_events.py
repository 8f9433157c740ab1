"""Signed webhooks: the event, its signature, and the retry schedule (delivery: test_sender.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from chalicelib.webhooks.events import (
    InvalidSignature,
    RetrySchedule,
    WebhookEvent,
    build_event,
    sign,
    verify_signature,
)
from chalicelib.webhooks.sender import WebhookSender

SECRET = "whsec_test_0123456789"
JOB_ID = "7d0c8f64-3c1e-4c55-9d0e-2b8f1f6c9a11"
FINISHED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
DOCUMENT = {"jobId": JOB_ID, "status": "completed", "progress": {"total": 2, "done": 2}}
NOW = 1_741_064_767


def event(status: str = "completed") -> WebhookEvent:
    return build_event(JOB_ID, status, {**DOCUMENT, "status": status}, FINISHED)


# --- the event ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event_type"),
    [("completed", "job.completed"), ("failed", "job.failed"), ("cancelled", "job.cancelled")],
)
def test_the_event_type_follows_the_terminal_status(status, event_type):
    built = event(status)
    payload = json.loads(built.body)
    assert payload == {
        "type": event_type,
        "id": built.id,
        "createdAt": "2025-03-04T05:06:07Z",
        "data": {**DOCUMENT, "status": status},
    }
    assert built.type == event_type and built.id.startswith("evt_")


def test_rebuilding_an_event_gives_the_same_id_and_the_same_bytes():
    assert event() == event()
    assert WebhookEvent.from_body(event().body) == event()


def test_each_job_and_type_has_its_own_event_id():
    other_job = build_event("another-job", "completed", DOCUMENT, FINISHED)
    assert len({event("completed").id, event("failed").id, other_job.id}) == 3


@pytest.mark.parametrize("status", ["queued", "processing", "done"])
def test_a_job_that_is_not_terminal_has_no_event(status):
    with pytest.raises(ValueError, match="only terminal states"):
        build_event(JOB_ID, status, DOCUMENT, FINISHED)


# --- signatures ---------------------------------------------------------------------------------


def test_a_signature_verifies_against_the_raw_body():
    body = event().body
    header = sign(SECRET, body, NOW)
    assert header.startswith(f"t={NOW},v1=")
    verify_signature(SECRET, header, body, tolerance=300, now=NOW + 299)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": b'{"type":"job.failed"}'}, "no signature matches"),
        ({"secret": "whsec_someone_else"}, "no signature matches"),
        ({"now": NOW + 301}, "outside the tolerance"),  # a replay
        ({"now": NOW - 301}, "outside the tolerance"),  # from the future
        ({"header": ""}, "must hold"),
        ({"header": None}, "must hold"),
        ({"header": f"t={NOW}"}, "must hold"),
        ({"header": "v1=abc"}, "must hold"),
        ({"header": f"t=soon,v1={'0' * 64}"}, "must hold"),
        ({"header": f"t={NOW},v0={'0' * 64}"}, "must hold"),
    ],
)
def test_a_tampered_stale_or_malformed_delivery_is_rejected(change, reason):
    body = event().body
    arguments = {"secret": SECRET, "header": sign(SECRET, body, NOW), "body": body, "tolerance": 300, "now": NOW}
    arguments.update(change)
    with pytest.raises(InvalidSignature, match=reason):
        verify_signature(**arguments)


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW},v1={'é' * 64}",  # non-ASCII: hmac.compare_digest raised TypeError
        f"t={NOW},v1={'0' * 63}",
        f"t={NOW},v1={'A' * 64}",  # hex is lower case, as sign() writes it
        f"t={NOW},v1={'0' * 64}\u00a0",
        f"t={'1' * 5000},v1={'0' * 64}",  # int() refuses more than 4,300 digits with a plain ValueError
        f"t=\u0661\u0662,v1={'0' * 64}",  # Arabic-Indic digits are digits to str.isdigit and int()
        f"t=-1,v1={'0' * 64}",
    ],
)
def test_a_malformed_signature_header_is_an_invalid_signature_never_another_error(header):
    with pytest.raises(InvalidSignature, match="Delineate-Signature"):
        verify_signature(SECRET, header, event().body, now=NOW)


def test_any_one_v1_signature_is_enough_so_secrets_can_be_rotated():
    body = event().body
    old = sign("whsec_old", body, NOW).split(",")[1]
    header = f"{sign(SECRET, body, NOW)}, {old}, v0=ignored"
    verify_signature("whsec_old", header, body, now=NOW)
    verify_signature(SECRET, header, body, now=NOW)


def test_an_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError, match="must not be empty"):
        WebhookSender("", allow_private=False)


# --- the retry schedule -------------------------------------------------------------------------


def test_the_cloud_schedule_grows_caps_at_the_sqs_limit_and_spans_more_than_an_hour():
    schedule = RetrySchedule()
    assert schedule.max_attempts == 8
    nominal = [schedule.nominal_delay(n) for n in range(1, 8)]
    assert nominal == [90, 180, 360, 720, 900, 900, 900]
    assert schedule.shortest_span() >= 3600
    largest_jitter = [schedule.delay_after(n, rng=lambda: 0.999999) for n in range(1, 8)]
    assert sum(largest_jitter) >= 3600
    assert all(0 < delay <= 900 for delay in largest_jitter)


def test_jitter_only_shortens_a_delay_and_by_at_most_a_tenth():
    schedule = RetrySchedule()
    for attempt in range(1, 30):
        nominal = schedule.nominal_delay(attempt)
        for draw in (0.0, 0.5, 0.999999):
            delay = schedule.delay_after(attempt, rng=lambda draw=draw: draw)
            assert nominal * 0.9 <= delay <= nominal <= 900


def test_the_dev_schedule_is_short():
    schedule = RetrySchedule(base_seconds=1)
    assert [schedule.nominal_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, 64]
    assert schedule.shortest_span() < 180


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_seconds": -1}, {"cap_seconds": 901}, {"jitter": 1.0}],
)
def test_a_schedule_beyond_what_sqs_can_delay_is_refused(options):
    with pytest.raises(ValueError):
        RetrySchedule(**options)
