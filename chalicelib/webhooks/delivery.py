"""The webhook's three steps: start it when a job ends, deliver one attempt, re-send a lost one.

    job ends (complete/fail/cancel) -> prepare once: pending, event stored -> `callback` message, attempt 1
    worker: claim attempt n -> POST -> delivered | retry: NEW message n+1, delayed | gave up: failed
    sweeper: pending, next attempt overdue by a grace period -> re-send it

A retry is a new delayed message, not a failed SQS receive: MAX_RECEIVE_COUNT
(5) receives would dead-letter the message before the 8 attempts that span an
hour, and SQS delays a message at most 900 s, the schedule's cap. The job's own
status never depends on the receiver: only callback* attributes change here.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any, Callable

from chalicelib import metrics
from chalicelib.aws.queue import MessageKind, WorkMessage, WorkQueue
from chalicelib.config import Settings
from chalicelib.errors import ValidationError
from chalicelib.jobs import documents, scheduling
from chalicelib.jobs.callback_slots import WebhookSlots
from chalicelib.jobs.callbacks import CallbackStore, ClaimedAttempt
from chalicelib.jobs.store import JobStore
from chalicelib.jobs.sweeps import SweepingJobStore
from chalicelib.metrics import Metric
from chalicelib.models import CallbackStatus, Job, utc_now
from chalicelib.webhooks.events import WebhookEvent, build_event
from chalicelib.webhooks.sender import DeliveryOutcome, DeliveryResult, WebhookSender
from chalicelib.webhooks.urls import CallbackUrlRefused, check_callback_url

log = logging.getLogger("delineate.webhooks")

# At most this many attempts of one owner (API key; jobs without one share one) POST at once.
# A receiver that dribbles holds a worker for CALLBACK_ATTEMPT_SECONDS (10 s) an attempt, and
# workers are shared with file work: two leave `make dev`'s other two consumers (and, in the
# cloud, every other Lambda worker) to files and other owners, and still deliver 20 events/s
# to a receiver that answers in 100 ms. A busy owner's next attempts wait, none is lost.
MAX_IN_FLIGHT_PER_OWNER = 2


def check_callback(url: str, allow_private: bool) -> None:
    """At initiate: a URL the worker would refuse is a 400 now, not a webhook that silently fails later."""
    try:
        check_callback_url(url, allow_private=allow_private)
    except CallbackUrlRefused as exc:  # CallbackHostUnresolved included
        raise ValidationError(str(exc)) from None


class NoSigningSecret(RuntimeError):
    """A callback message reached a process that was given no signing secret: a deployment error."""


def event_data(job: Job, settings: Settings) -> dict:
    """The status document as it stood when the job ended, without `downloadUrl` and the webhook's own
    state, and with `statusUrl`: where to GET the status, and a fresh `downloadUrl` with it.

    No presigned URL: the event is stored on the job item (and so in the table's backups) and
    re-sent for over an hour, but a URL expires after PRESIGN_EXPIRY_SECONDS (900 s), and one the
    sweeper signed never worked (its role has no s3:GetObject).
    """
    document = documents.status_document(job, None)
    del document["downloadUrl"], document["callback"]
    if job.result_key:  # the bundle's size and hash say nothing secret
        document.update(size=job.size, sha256=job.sha256)
    document["statusUrl"] = settings.public_base_url + documents.status_path(job.job_id)
    return document


class Webhooks:
    def __init__(
        self,
        store: CallbackStore,
        jobs: JobStore,
        queue: WorkQueue,
        settings: Settings,
        sender: Callable[[], WebhookSender] | None = None,
        clock: Callable[[], datetime] = utc_now,
        *,
        slots: WebhookSlots,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """`sender` builds the signing sender on first use: only the worker has (and reads) the secret."""
        self._store, self._slots, self._jobs, self._queue = store, slots, jobs, queue
        self._rng = rng
        self._settings = settings
        self._sender_factory = sender
        self._sender: WebhookSender | None = None
        self._clock = clock

    def job_ended(self, job: Job) -> bool:
        """Settles the ended job (jobs/endings.py), starting its webhook when it has a callbackUrl:
        the event is stored in the settling write and attempt 1 is sent. False when it was settled already.

        Called right after the write that ended the job, and by the sweeper for a job
        whose ender died first. The settling write is conditional, so only one caller
        sends attempt 1.
        """
        if not job.status.terminal:
            return False
        if job.callback_url is None:
            return self._jobs.settle(job)
        event = build_event(job.job_id, job.status.value, event_data(job, self._settings), job.updated_at)
        if not self._jobs.settle(job, event.body):
            return False
        # If this send is lost the sweeper finds the webhook pending and overdue, and sends it.
        self._queue.send(WorkMessage(MessageKind.CALLBACK, job.job_id, attempt=1, group=scheduling.group(job)))
        log.info("webhook started", extra={"jobId": job.job_id, "eventId": event.id, "type": event.type})
        return True

    def deliver(self, job_id: str, attempt: int) -> DeliveryOutcome | None:
        """One attempt, by whoever claims it; None when it was delivered, settled or claimed already.

        The sender (and the signing secret it reads from Secrets Manager) comes first: if
        that fails, nothing is claimed and the message's next receive makes the attempt.
        """
        sender = self._signing_sender()
        in_flight = sender.longest_attempt_seconds
        claimed = self._store.claim(job_id, attempt, in_flight)
        if claimed is None:
            log.info("webhook attempt not claimed", extra={"jobId": job_id, "attempt": attempt})
            return None
        slot = self._slots.take(claimed.owner, f"{job_id}#{attempt}", MAX_IN_FLIGHT_PER_OWNER, in_flight)
        if slot is None:
            return self._postpone(claimed)
        try:
            event = WebhookEvent.from_body(claimed.event_body)
            result = sender.deliver(claimed.url, event, attempt)
            self._record(claimed, event, result)
        finally:
            self._slots.release(slot)
        return result.outcome

    def _postpone(self, claimed: ClaimedAttempt) -> DeliveryOutcome:
        """Its owner has MAX_IN_FLIGHT_PER_OWNER attempts out: nothing is sent, the claim is handed
        back, and the same attempt comes again within CALLBACK_ATTEMPT_SECONDS (spread, so a burst
        of one owner's webhooks does not return all at once)."""
        job_id, attempt = claimed.job_id, claimed.attempt
        delay = 1 + int(self._rng() * self._settings.callback_attempt_seconds)
        if self._store.unclaim(job_id, attempt, self._clock() + timedelta(seconds=delay)):
            group = scheduling.group_for(job_id, claimed.owner)
            self._queue.send(WorkMessage(MessageKind.CALLBACK, job_id, attempt=attempt, group=group), delay)
        log.info("webhook attempt postponed: its owner's attempts are in flight", extra={"jobId": job_id})
        return DeliveryOutcome.POSTPONED

    def _record(self, claimed: ClaimedAttempt, event: WebhookEvent, result: DeliveryResult) -> None:
        """The attempt's outcome on the job item, and the next attempt's message after a failure."""
        job_id, attempt = claimed.job_id, claimed.attempt
        fields: dict[str, Any] = {"jobId": job_id, "eventId": event.id, "attempt": attempt}
        metrics.record(Metric.WEBHOOK_ATTEMPTS)
        if result.outcome is DeliveryOutcome.DELIVERED:
            self._store.settle(job_id, attempt, CallbackStatus.DELIVERED)
            metrics.record(Metric.WEBHOOKS_DELIVERED)
        elif result.outcome is DeliveryOutcome.RETRY:
            delay = result.retry_in_seconds or 0
            self._store.record_retry(job_id, attempt, result.last_error, self._clock() + timedelta(seconds=delay))
            group = scheduling.group_for(job_id, claimed.owner)
            retry = WorkMessage(MessageKind.CALLBACK, job_id, attempt=attempt + 1, group=group)
            self._queue.send(retry, delay_seconds=delay)
            fields.update(retryInSeconds=delay, error=result.last_error)
        else:
            self._store.settle(job_id, attempt, CallbackStatus.FAILED, result.last_error)
            metrics.record(Metric.WEBHOOK_FAILURES)
            fields.update(error=result.last_error)
        log.info(f"webhook attempt {result.outcome.value}", extra=fields)

    def resend_overdue(self, grace_seconds: int) -> list[str]:
        """Pending webhooks whose message went missing: re-sent, or failed when the last attempt was lost."""
        resent = []
        for overdue in self._store.overdue(grace_seconds):
            if overdue.attempts >= self._settings.callback_max_attempts:
                self._store.settle(
                    overdue.job_id, overdue.attempts, CallbackStatus.FAILED, "the last attempt's outcome was lost"
                )
                metrics.record(Metric.WEBHOOK_FAILURES)
                continue
            if self._store.postpone(overdue.job_id, overdue.attempts):
                group = scheduling.group_for(overdue.job_id, overdue.owner)
                message = WorkMessage(MessageKind.CALLBACK, overdue.job_id, attempt=overdue.attempts + 1, group=group)
                self._queue.send(message)
                resent.append(overdue.job_id)
        return resent

    def _signing_sender(self) -> WebhookSender:
        if self._sender is None:
            if self._sender_factory is None:
                raise NoSigningSecret("this process delivers no webhooks: it was given no signing secret")
            self._sender = self._sender_factory()
        return self._sender


class JobStoreWithWebhooks(JobStore):
    """A JobStore that settles an ended job with its webhook right after the write that ended it.

    The hook sits under every terminal write, whoever makes it (worker,
    sweeper, the API's cancel), so no caller has to remember it. A failure
    never undoes or fails the job's own transition: the job stays in `ending`,
    and the sweeper settles it.
    """

    webhooks: Webhooks | None = None

    def settle_ended(self, job: Job) -> bool:
        return self.webhooks.job_ended(job) if self.webhooks is not None else super().settle_ended(job)


class SweepingJobStoreWithWebhooks(SweepingJobStore, JobStoreWithWebhooks):
    """The sweeper's store: a stalled or expired job it fails is settled like any other ending."""
