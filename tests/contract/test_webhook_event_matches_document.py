"""A webhook event, built as the worker builds it, against the WebhookEvent schema of chalicelib/openapi.json."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from chalicelib.config import Settings
from chalicelib.models import Job, JobStatus
from chalicelib.webhooks.delivery import event_data
from chalicelib.webhooks.events import build_event
from tests.contract.conformance import _validate

ENDED = datetime(2026, 1, 1, tzinfo=timezone.utc)
JOB = Job(
    "7d0c8f64-3c1e-4c55-9d0e-2b8f1f6c9a11",
    JobStatus.COMPLETED,
    (70000, 70001),
    created_at=ENDED,
    updated_at=ENDED,
    expires_at=ENDED,
    completed_files=2,
    available_files=1,
    completed_at=ENDED,
    result_key="results/7d0c8f64.zip",
    size=1234,
    sha256="ab" * 32,
    callback_url="https://example.com/hooks",
)


@pytest.mark.parametrize(
    ("job", "base"),
    [
        (JOB, ""),
        (JOB, "https://api.example.com"),
        (dataclasses.replace(JOB, status=JobStatus.FAILED, result_key=None, size=None, sha256=None, error="x"), ""),
    ],
)
def test_a_webhook_event_matches_the_documented_schema(job, base):
    settings = dataclasses.replace(Settings.from_env({}), public_base_url=base)

    event = build_event(job.job_id, job.status.value, event_data(job, settings), job.updated_at)

    _validate(json.loads(event.body), "#/components/schemas/WebhookEvent", "a webhook event")
