"""The emulator stops for a while (SIGSTOP, then SIGCONT): the API says so quickly, nothing is lost.

SIGSTOP is the honest "AWS stops answering": the process keeps its in-memory
state and its listening socket still accepts connections, so clients only
notice through their read timeouts, exactly like a hung dependency.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import requests

from tests.faults.client import (
    SMALL_SAMPLES,
    Tally,
    initiate,
    judge_completed,
    sample_sources,
    status,
    wait_for,
    wait_terminal,
)

SCENARIO = "4 emulator outage"
REQUEST_TIMEOUT_MS = 8000
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "2",
    "QUEUE_VISIBILITY_TIMEOUT": "10",
    "DOWNLOAD_DELAY_MIN_MS": "300",
    "DOWNLOAD_DELAY_MAX_MS": "600",
    "REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
    # the limiter runs (and must fail open within the budget) but never limits this test
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_MAX_REQUESTS": "100000",
}
ERROR_SHAPE = {"error", "message", "requestId"}


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_outage_answers_503_within_the_budget_and_accepted_jobs_finish_after(fault_stack, record):
    stack, tally = fault_stack, Tally()
    jobs = {}
    for index in range(3):
        file_ids = list(SMALL_SAMPLES[index : index + 5])
        jobs[initiate(stack, file_ids, tally=tally).json()["jobId"]] = file_ids
    wait_for(
        lambda: any(status(stack, job_id)["status"] == "processing" for job_id in jobs),
        timeout=20,
        what="a job in progress when the outage starts",
    )
    emulator = stack.emulator_pid()
    key = str(uuid.uuid4())

    os.kill(emulator, signal.SIGSTOP)
    try:
        health, health_seconds = timed(lambda: requests.get(stack.url("/health"), timeout=30))
        refused, refused_seconds = timed(lambda: initiate(stack, [SMALL_SAMPLES[0]], **{"Idempotency-Key": key}))
        polled, polled_seconds = timed(
            lambda: requests.get(stack.url(f"/v1/download/status/{next(iter(jobs))}"), timeout=30)
        )
    finally:
        os.kill(emulator, signal.SIGCONT)
    outage = [health, refused, polled]
    tally.server_errors += sum(response.status_code >= 500 and response.status_code != 503 for response in outage)

    wait_for(
        lambda: requests.get(stack.url("/health"), timeout=30).status_code == 200, timeout=30, what="/health to recover"
    )
    retried = tally.saw(initiate(stack, [SMALL_SAMPLES[0]], **{"Idempotency-Key": key}))
    assert retried.status_code in (200, 202), retried.text
    jobs[retried.json()["jobId"]] = [SMALL_SAMPLES[0]]
    record.jobs = len(jobs)
    final = wait_terminal(stack, jobs, timeout=60, tally=tally)
    judge_completed(stack, tally, final, jobs, sample_sources(SMALL_SAMPLES))
    tally.fill(record)
    record.notes.append(
        f"outage answers: /health {health.status_code} in {health_seconds:.1f}s, initiate "
        f"{refused.status_code} in {refused_seconds:.1f}s, status {polled.status_code} in "
        f"{polled_seconds:.1f}s (budget {REQUEST_TIMEOUT_MS / 1000:.0f}s); retry with the same "
        f"Idempotency-Key answered {retried.status_code}"
    )

    budget = REQUEST_TIMEOUT_MS / 1000
    assert health.status_code == 503 and health_seconds < budget
    assert health.json() == {
        "status": "unhealthy",
        "checks": {"storage": "error", "database": "error", "queue": "error"},
    }
    for response, seconds in ((refused, refused_seconds), (polled, polled_seconds)):
        assert response.status_code == 503 and seconds < budget, (response.status_code, seconds)
        body = response.json()
        assert set(body) == ERROR_SHAPE and body["error"] == "Service Unavailable"
        assert body["message"].startswith("database is unavailable")
        assert "Traceback" not in response.text and body["requestId"] == response.headers["X-Request-ID"]
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
