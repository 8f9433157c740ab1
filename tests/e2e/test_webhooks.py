"""Signed webhooks through the real dev stack: initiate with a callbackUrl, a loopback receiver gets the event.

The stack runs with quick retries (CALLBACK_RETRY_BASE_SECONDS=1) and three
attempts, so a receiver that is down for the first two attempts still gets the
event, and one that always fails exhausts them in a few seconds.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Callable

import pytest
import requests

from chalicelib.webhooks.events import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from tests.support.devstack import FAST_FILES, poll_until_terminal, start_dev_stack
from tests.support.receiver import WebhookReceiver

MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def hook_stack(tmp_path_factory):
    stack = start_dev_stack(
        tmp_path_factory.mktemp("hooks"),
        **FAST_FILES,
        CALLBACK_RETRY_BASE_SECONDS="1",
        CALLBACK_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
    )
    yield stack
    stack.stop()


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


def initiate(stack, callback_url: str, file_ids=(70000,)) -> str:
    response = requests.post(
        stack.url("/v1/download/initiate"), json={"file_ids": list(file_ids), "callbackUrl": callback_url}, timeout=10
    )
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def callback_when(stack, job_id: str, condition: Callable[[dict], bool], timeout: float = 60) -> dict:
    """The status document once its callback meets `condition` (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    document: dict = {}
    while time.monotonic() < deadline:
        document = requests.get(stack.url(f"/v1/download/status/{job_id}"), timeout=10).json()
        if condition(document["callback"]):
            return document
        time.sleep(0.2)
    raise AssertionError(f"callback of {job_id} not as expected after {timeout}s: {document}")


def callback_settled(stack, job_id: str, timeout: float = 60) -> dict:
    """The status document once its callback is delivered or failed."""
    return callback_when(stack, job_id, lambda callback: callback["status"] != "pending", timeout)


def test_a_receiver_down_for_the_first_attempts_gets_the_event_exactly_once_signed(hook_stack, receiver):
    receiver.fail_first(2)
    job_id = initiate(hook_stack, receiver.url("/hooks/ok"))

    final, _ = poll_until_terminal(hook_stack, job_id)
    document = callback_settled(hook_stack, job_id)

    assert final["status"] == "completed"
    assert document["callback"]["status"] == "delivered" and document["callback"]["attempts"] == 3
    deliveries = receiver.deliveries
    assert len(deliveries) == 3  # two refused, one delivered, and nothing after it
    secret = hook_stack.stack_env()["CALLBACK_SIGNING_SECRET"]
    delivered = deliveries[-1]
    verify_signature(secret, delivered.headers[SIGNATURE_HEADER.lower()], delivered.body)
    event = json.loads(delivered.body)
    assert event["type"] == "job.completed" and event["data"]["jobId"] == job_id
    assert {delivery.headers[EVENT_ID_HEADER.lower()] for delivery in deliveries} == {event["id"]}
    assert "downloadUrl" not in event["data"]  # it would expire while the event is re-sent
    assert requests.get(event["data"]["statusUrl"], timeout=10).json()["downloadUrl"]


def test_a_receiver_dribbling_its_answer_is_given_up_within_20s_of_the_jobs_end_and_then_delivered_once(
    hook_stack, receiver
):
    receiver.dribble(0.5, count=1)  # the first answer: one byte every 0.5 s, and it never ends
    job_id = initiate(hook_stack, receiver.url("/hooks/slow"))
    final, _ = poll_until_terminal(hook_stack, job_id)
    ended = datetime.strptime(final["completedAt"], "%Y-%m-%dT%H:%M:%S%z")  # truncated: the end or before

    given_up = callback_when(hook_stack, job_id, lambda callback: callback["lastError"] is not None, timeout=30)

    assert (datetime.now(timezone.utc) - ended).total_seconds() < 20
    assert given_up["callback"]["lastError"] == "no complete answer within 10s"
    settled = callback_settled(hook_stack, job_id)
    assert (settled["callback"]["status"], settled["callback"]["attempts"]) == ("delivered", 2)
    deliveries = receiver.deliveries
    assert len(deliveries) == 2  # the dribbled attempt, then one delivery, and nothing after it
    assert len({delivery.headers[EVENT_ID_HEADER.lower()] for delivery in deliveries}) == 1


def test_a_receiver_that_always_fails_leaves_the_callback_failed_and_the_job_completed(hook_stack, receiver):
    receiver.fail_always()
    job_id = initiate(hook_stack, receiver.url("/hooks/broken"))

    document = callback_settled(hook_stack, job_id)

    assert document["status"] == "completed"
    assert document["callback"]["status"] == "failed"
    assert document["callback"]["attempts"] == MAX_ATTEMPTS
    assert document["callback"]["lastError"] == "HTTP 500"
    assert len(receiver.deliveries) == MAX_ATTEMPTS


def test_a_cancelled_job_sends_job_cancelled(hook_stack, receiver):
    job_id = initiate(hook_stack, receiver.url("/hooks/cancel"), file_ids=tuple(range(70000, 70020)))
    response = requests.delete(hook_stack.url(f"/v1/download/{job_id}"), timeout=10)
    if response.status_code == 409:
        pytest.fail(f"the job ended before it could be cancelled: {response.text}")

    [delivery] = receiver.wait_for(1, timeout=30)

    assert json.loads(delivery.body)["type"] == "job.cancelled"
    assert callback_settled(hook_stack, job_id)["callback"]["status"] == "delivered"


def test_initiate_refuses_a_metadata_address_as_callback(hook_stack):
    response = requests.post(
        hook_stack.url("/v1/download/initiate"),
        json={"file_ids": [70000], "callbackUrl": "http://169.254.169.254/latest/meta-data/"},
        timeout=10,
    )

    assert response.status_code == 400
    assert "callbackUrl" in response.json()["message"]
