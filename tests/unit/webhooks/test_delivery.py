"""A job's webhook, from the write that ends the job to the last attempt, against a real loopback receiver.

The job store is moto's; the queue records what would be sent (and with which
delay) so a test plays the worker by calling Webhooks.deliver itself.
"""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from chalicelib.api.service import DownloadService
from chalicelib.aws.queue import MessageKind, WorkMessage
from chalicelib.aws.storage import Storage
from chalicelib.errors import ValidationError
from chalicelib.jobs.callback_slots import WebhookSlots
from chalicelib.jobs.callbacks import CallbackStore
from chalicelib.jobs.store import JobStore
from chalicelib.models import FileResult, FileStatus, InitiateRequest
from chalicelib.webhooks.delivery import MAX_IN_FLIGHT_PER_OWNER, JobStoreWithWebhooks, Webhooks
from chalicelib.webhooks.events import EVENT_ID_HEADER, SIGNATURE_HEADER, RetrySchedule, verify_signature
from chalicelib.webhooks.sender import DeliveryOutcome, WebhookSender
from tests.support.receiver import WebhookReceiver

SECRET = "whsec_test"
MAX_ATTEMPTS = 3


class RecordingQueue:
    """Stands in for WorkQueue: what was sent, and with which delay."""

    def __init__(self) -> None:
        self.sent: list[tuple[WorkMessage, int]] = []

    def send(self, message: WorkMessage, delay_seconds: int = 0) -> None:
        self.sent.append((message, delay_seconds))

    def take(self) -> list[tuple[WorkMessage, int]]:
        sent, self.sent = self.sent, []
        return sent


@dataclasses.dataclass
class Hooks:
    store: JobStoreWithWebhooks
    webhooks: Webhooks
    queue: RecordingQueue
    settings: object
    table: object

    def other_worker(self) -> Webhooks:
        """A second consumer: its own objects, the same table."""
        return make_webhooks(self.table, self.store, self.queue, self.settings)

    def ended_job(self, url: str | None, end: str = "cancel") -> str:
        job, _ = self.store.create(InitiateRequest((70000,), callback_url=url))
        assert self.store.start_processing(job.job_id)
        if end == "complete":
            self.store.record_file(job.job_id, FileResult(70000, FileStatus.UNAVAILABLE))
            assert self.store.complete(job.job_id, None, None)
        elif end == "fail":
            assert self.store.fail(job.job_id, "stalled")
        else:
            assert self.store.cancel(job.job_id)
        return job.job_id

    def status(self, job_id: str) -> dict:
        storage = Storage(None, "unused")
        return DownloadService(self.store, self.queue, storage, self.settings).status(job_id)  # type: ignore[arg-type]


def make_webhooks(table, store: JobStore, queue: RecordingQueue, settings) -> Webhooks:
    def sender() -> WebhookSender:
        schedule = RetrySchedule(max_attempts=MAX_ATTEMPTS, base_seconds=1)
        return WebhookSender(SECRET, allow_private=True, schedule=schedule, rng=lambda: 0.0)

    return Webhooks(CallbackStore(table), store, queue, settings, sender, slots=WebhookSlots(table))  # type: ignore[arg-type]


@pytest.fixture
def hooks(deployed) -> Hooks:
    settings = dataclasses.replace(deployed.settings, callback_allow_private=True, callback_max_attempts=MAX_ATTEMPTS)
    store = JobStoreWithWebhooks(deployed.table, settings.job_ttl_seconds)
    queue = RecordingQueue()
    store.webhooks = make_webhooks(deployed.table, store, queue, settings)
    return Hooks(store, store.webhooks, queue, settings, deployed.table)


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


def test_ending_a_job_starts_its_webhook_with_attempt_1(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())

    assert hooks.queue.take() == [(WorkMessage(MessageKind.CALLBACK, job_id, attempt=1, group=job_id), 0)]
    assert hooks.status(job_id)["callback"] == {
        "url": receiver.url(),
        "status": "pending",
        "attempts": 0,
        "lastError": None,
        "deliveredAt": None,
    }


def test_a_cancelled_job_delivers_one_signed_job_cancelled_event(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())

    assert hooks.webhooks.deliver(job_id, 1) is DeliveryOutcome.DELIVERED

    [delivery] = receiver.deliveries
    event = json.loads(delivery.body)
    assert event["type"] == "job.cancelled"
    assert event["data"]["jobId"] == job_id and event["data"]["status"] == "cancelled"
    assert "callback" not in event["data"]
    assert delivery.headers[EVENT_ID_HEADER.lower()] == event["id"]
    verify_signature(SECRET, delivery.headers[SIGNATURE_HEADER.lower()], delivery.body)
    callback = hooks.status(job_id)["callback"]
    assert callback["status"] == "delivered" and callback["attempts"] == 1 and callback["deliveredAt"]


def test_a_redelivered_callback_message_does_not_deliver_twice(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())
    hooks.webhooks.deliver(job_id, 1)

    assert hooks.webhooks.deliver(job_id, 1) is None

    assert len(receiver.deliveries) == 1


def test_two_workers_handling_the_same_callback_message_deliver_once(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())
    first, second = hooks.webhooks, hooks.other_worker()

    outcomes = [first.deliver(job_id, 1), second.deliver(job_id, 1)]

    assert outcomes == [DeliveryOutcome.DELIVERED, None]
    assert len(receiver.deliveries) == 1


def test_a_failed_attempt_sends_a_new_delayed_message_and_the_retry_resends_the_same_event(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())
    hooks.queue.take()
    receiver.fail_first(1)

    assert hooks.webhooks.deliver(job_id, 1) is DeliveryOutcome.RETRY
    assert hooks.queue.take() == [(WorkMessage(MessageKind.CALLBACK, job_id, attempt=2, group=job_id), 1)]
    assert hooks.status(job_id)["callback"]["lastError"] == "HTTP 500"
    assert hooks.webhooks.deliver(job_id, 2) is DeliveryOutcome.DELIVERED

    first, second = receiver.deliveries
    assert first.body == second.body
    assert first.headers[EVENT_ID_HEADER.lower()] == second.headers[EVENT_ID_HEADER.lower()]


def test_an_owned_jobs_webhook_messages_share_its_owners_group_first_retry_and_resend(hooks, receiver):
    owner = "a1a1a1a1a1a1a1a1"
    job, _ = hooks.store.create(InitiateRequest((70000,), callback_url=receiver.url()), owner)
    assert hooks.store.cancel(job.job_id)
    receiver.fail_first(1)

    [(first, _)] = hooks.queue.take()
    hooks.webhooks.deliver(job.job_id, 1)
    [(retry, _)] = hooks.queue.take()
    hooks.webhooks.resend_overdue(grace_seconds=-3600)  # as if the retry's message were lost
    [(resent, _)] = hooks.queue.take()

    assert [message.group for message in (first, retry, resent)] == [owner, owner, owner]


def test_a_secret_that_cannot_be_loaded_leaves_the_attempt_unclaimed_for_the_message_retry(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())
    working = make_webhooks(hooks.table, hooks.store, hooks.queue, hooks.settings)

    def secrets_manager_hiccup() -> WebhookSender:
        raise ConnectionError("secretsmanager: read timeout")

    hiccup = Webhooks(
        CallbackStore(hooks.table),
        hooks.store,
        hooks.queue,
        hooks.settings,
        secrets_manager_hiccup,
        slots=WebhookSlots(hooks.table),
    )  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        hiccup.deliver(job_id, 1)  # the SQS message is received again after its visibility timeout

    assert hooks.status(job_id)["callback"]["attempts"] == 0
    assert working.deliver(job_id, 1) is DeliveryOutcome.DELIVERED
    assert len(receiver.deliveries) == 1


def test_an_owners_attempt_beyond_its_in_flight_cap_is_postponed_not_lost_and_other_owners_go_on(hooks, receiver):
    def ended(owner: str, url: str) -> str:
        job, _ = hooks.store.create(InitiateRequest((70000,), callback_url=url), owner)
        assert hooks.store.cancel(job.job_id)
        return job.job_id

    busy = [ended("b2b2b2b2b2b2b2b2", receiver.url()) for _ in range(MAX_IN_FLIGHT_PER_OWNER + 1)]
    hooks.queue.take()
    receiver.hang(10)  # released below, once the excess attempt has been turned away
    in_flight = [threading.Thread(target=hooks.webhooks.deliver, args=(job_id, 1)) for job_id in busy[:-1]]
    for thread in in_flight:
        thread.start()
    receiver.wait_for(MAX_IN_FLIGHT_PER_OWNER, timeout=5)

    excess = hooks.webhooks.deliver(busy[-1], 1)
    with WebhookReceiver() as elsewhere:
        other = hooks.webhooks.deliver(ended("c3c3c3c3c3c3c3c3", elsewhere.url()), 1)

    assert (excess, other) == (DeliveryOutcome.POSTPONED, DeliveryOutcome.DELIVERED)
    item = hooks.table.get_item(Key={"pk": f"JOB#{busy[-1]}", "sk": "JOB"}, ConsistentRead=True)["Item"]
    assert item["callbackAttempts"] == 0  # handed back: the attempt is not used up
    [(again, delay)] = [(message, delay) for message, delay in hooks.queue.take() if message.job_id == busy[-1]]
    assert again.attempt == 1 and 1 <= delay <= hooks.settings.callback_attempt_seconds + 1
    receiver.release()
    for thread in in_flight:
        thread.join(timeout=10)
    assert hooks.webhooks.deliver(busy[-1], 1) is DeliveryOutcome.DELIVERED
    assert len(receiver.deliveries) == MAX_IN_FLIGHT_PER_OWNER + 1  # each event once


def test_an_attempt_out_of_turn_is_not_claimed(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())

    assert hooks.webhooks.deliver(job_id, 2) is None

    assert receiver.deliveries == []


def test_after_the_last_attempt_the_webhook_fails_and_the_job_stays_completed(hooks, receiver):
    job_id = hooks.ended_job(receiver.url(), end="complete")
    receiver.fail_always()

    outcomes = [hooks.webhooks.deliver(job_id, attempt) for attempt in range(1, MAX_ATTEMPTS + 1)]

    assert outcomes == [DeliveryOutcome.RETRY, DeliveryOutcome.RETRY, DeliveryOutcome.GAVE_UP]
    status = hooks.status(job_id)
    assert status["status"] == "completed"
    assert status["callback"] == {
        "url": receiver.url(),
        "status": "failed",
        "attempts": MAX_ATTEMPTS,
        "lastError": "HTTP 500",
        "deliveredAt": None,
    }
    assert json.loads(receiver.deliveries[0].body)["type"] == "job.completed"


def test_a_completed_jobs_event_points_to_its_status_and_no_presigned_url_is_sent_or_stored(hooks, receiver):
    job, _ = hooks.store.create(InitiateRequest((70000,), callback_url=receiver.url()))
    assert hooks.store.start_processing(job.job_id)
    hooks.store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, 5))
    assert hooks.store.complete(job.job_id, f"results/{job.job_id}.zip", 1234, "ab" * 32)
    stored = hooks.table.get_item(Key={"pk": f"JOB#{job.job_id}", "sk": "JOB"})["Item"]["callbackEvent"]

    hooks.webhooks.deliver(job.job_id, 1)

    data = json.loads(receiver.deliveries[0].body)["data"]
    assert data["jobId"] == job.job_id and data["status"] == "completed"
    assert data["statusUrl"] == f"/v1/download/status/{job.job_id}"
    assert (data["size"], data["sha256"]) == (1234, "ab" * 32)
    assert "downloadUrl" not in data
    assert "X-Amz-" not in stored and "downloadUrl" not in stored


def test_the_events_status_url_is_absolute_when_the_service_knows_its_public_address(hooks, receiver):
    settings = dataclasses.replace(hooks.settings, public_base_url="https://api.example.com")
    hooks.store.webhooks = make_webhooks(hooks.table, hooks.store, hooks.queue, settings)
    job_id = hooks.ended_job(receiver.url())

    hooks.store.webhooks.deliver(job_id, 1)

    assert json.loads(receiver.deliveries[0].body)["data"]["statusUrl"] == (
        f"https://api.example.com/v1/download/status/{job_id}"
    )


def test_a_failed_job_sends_job_failed(hooks, receiver):
    job_id = hooks.ended_job(receiver.url(), end="fail")

    hooks.webhooks.deliver(job_id, 1)

    assert json.loads(receiver.deliveries[0].body)["type"] == "job.failed"


def test_a_job_without_a_callback_url_has_no_webhook(hooks):
    job_id = hooks.ended_job(None)

    assert hooks.queue.take() == []
    assert hooks.status(job_id)["callback"] is None


def test_a_lost_message_is_sent_again_by_the_sweeper_once_overdue(hooks, receiver, deployed):
    job_id = hooks.ended_job(receiver.url())
    hooks.queue.take()  # the send is "lost"

    assert hooks.webhooks.resend_overdue(grace_seconds=3600) == []
    resent = hooks.webhooks.resend_overdue(grace_seconds=-1)

    assert resent == [job_id]
    assert hooks.queue.take() == [(WorkMessage(MessageKind.CALLBACK, job_id, attempt=1, group=job_id), 0)]
    assert hooks.webhooks.resend_overdue(grace_seconds=10) == []  # postponed: not re-sent every sweep


def test_the_sweeper_leaves_a_last_attempt_alone_while_it_is_in_flight(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())
    receiver.fail_first(MAX_ATTEMPTS - 1)
    for attempt in range(1, MAX_ATTEMPTS):
        hooks.webhooks.deliver(job_id, attempt)  # the last retry is due in 2 s
    receiver.hang(1)
    last = threading.Thread(target=hooks.webhooks.deliver, args=(job_id, MAX_ATTEMPTS))
    last.start()
    receiver.wait_for(MAX_ATTEMPTS, timeout=5)  # the last attempt is in flight

    swept = hooks.webhooks.resend_overdue(grace_seconds=-3)  # a sweep at least a second after it was due
    last.join(timeout=10)

    assert swept == []
    assert hooks.status(job_id)["callback"]["status"] == "delivered"


def test_a_settled_webhook_is_not_sent_again_by_the_sweeper(hooks, receiver):
    job_id = hooks.ended_job(receiver.url())
    hooks.webhooks.deliver(job_id, 1)

    assert hooks.webhooks.resend_overdue(grace_seconds=-1) == []


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data", "ftp://example.com/hook", "http://user:pw@example.com/"],
)
def test_initiate_refuses_a_callback_url_the_worker_would_refuse(hooks, url):
    service = DownloadService(hooks.store, hooks.queue, Storage(None, "unused"), hooks.settings)  # type: ignore[arg-type]

    with pytest.raises(ValidationError, match="callbackUrl"):
        service.initiate(InitiateRequest((70000,), callback_url=url))


def test_initiate_refuses_a_private_host_unless_the_deployment_allows_it(hooks):
    settings = dataclasses.replace(hooks.settings, callback_allow_private=False)
    service = DownloadService(hooks.store, hooks.queue, Storage(None, "unused"), settings)  # type: ignore[arg-type]

    with pytest.raises(ValidationError, match="callbackUrl"):
        service.initiate(InitiateRequest((70000,), callback_url="http://127.0.0.1:9/hook"))


def test_attempts_deliveries_and_give_ups_are_counted_as_metrics(hooks, receiver, emitted):
    delivered = hooks.ended_job(receiver.url())
    hooks.webhooks.deliver(delivered, 1)
    failing = hooks.ended_job(receiver.url(), end="complete")
    receiver.fail_always()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        hooks.webhooks.deliver(failing, attempt)

    [line] = emitted()
    assert len(line["WebhookAttempts"]) == 1 + MAX_ATTEMPTS
    assert len(line["WebhooksDelivered"]) == 1 and len(line["WebhookFailures"]) == 1
