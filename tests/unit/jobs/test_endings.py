"""What follows a job's end happens once, even when the process that ended the job dies before it."""

from __future__ import annotations

import pytest

from chalicelib.aws.queue import MessageKind, WorkMessage, WorkQueue
from chalicelib.jobs.callback_slots import WebhookSlots
from chalicelib.jobs.callbacks import CallbackStore
from chalicelib.jobs.items import ENDING, ending_value
from chalicelib.jobs.owners import active_jobs, counter_key
from chalicelib.jobs.store import JobStore
from chalicelib.models import InitiateRequest, Job
from chalicelib.webhooks.delivery import SweepingJobStoreWithWebhooks, Webhooks
from chalicelib.worker.sweeper import Sweeper

ALICE = "a1a1a1a1a1a1a1a1"
HOOK = "https://hooks.example.com/delineate"


class DiesAfterEnding(JobStore):
    """A process that dies right after the write that ended a job, before anything follows it."""

    def _after_end(self, job: Job) -> None:
        return None


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[WorkMessage] = []

    def send(self, message: WorkMessage, delay_seconds: int = 0) -> None:
        self.sent.append(message)


@pytest.fixture
def dying(deployed, clock) -> DiesAfterEnding:
    return DiesAfterEnding(deployed.table, deployed.settings.job_ttl_seconds, clock=clock)


@pytest.fixture
def sent() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def sweeper(deployed, clock, sent) -> Sweeper:
    store = SweepingJobStoreWithWebhooks(deployed.table, deployed.settings.job_ttl_seconds, clock=clock)
    callbacks = CallbackStore(deployed.table, clock=clock)
    store.webhooks = Webhooks(callbacks, store, sent, deployed.settings, slots=WebhookSlots(deployed.table))  # type: ignore[arg-type]
    return Sweeper(store, WorkQueue(deployed.sqs, deployed.queue_url), deployed.settings, store.webhooks)


def end(store: JobStore, callback_url: str | None = None, owner: str | None = None) -> str:
    job, _ = store.create(InitiateRequest((70000,), callback_url=callback_url), owner)
    assert store.cancel(job.job_id)
    return job.job_id


def past_grace(clock, deployed) -> None:
    clock.advance(deployed.settings.stalled_job_seconds + 1)


def test_an_ended_job_is_settled_right_after_the_write_that_ended_it(deployed, clock):
    job_id = end(JobStore(deployed.table, deployed.settings.job_ttl_seconds, clock=clock), owner=ALICE)

    assert "active" not in deployed.job_item(job_id)
    assert active_jobs(deployed.table, ALICE) == 0


def test_an_owned_job_whose_ender_died_is_settled_by_the_sweeper_once(deployed, clock, dying, sweeper):
    job_id = end(dying, owner=ALICE)
    assert deployed.job_item(job_id)["active"] == ending_value(job_id)
    assert active_jobs(deployed.table, ALICE) == 1

    assert "settled" not in sweeper.sweep()  # within the grace: its ender may still be at it
    past_grace(clock, deployed)
    assert sweeper.sweep()["settled"] == [job_id]
    assert "settled" not in sweeper.sweep()

    assert "active" not in deployed.job_item(job_id)
    assert active_jobs(deployed.table, ALICE) == 0


def test_a_webhook_whose_ender_died_is_started_by_the_sweeper_once(deployed, clock, dying, sweeper, sent):
    job_id = end(dying, callback_url=HOOK)
    past_grace(clock, deployed)

    assert sweeper.sweep()["settled"] == [job_id]
    sweeper.sweep()

    assert sent.sent == [WorkMessage(MessageKind.CALLBACK, job_id, attempt=1, group=job_id)]
    item = deployed.job_item(job_id)
    assert (item["callbackStatus"], item["active"]) == ("pending", "callbacks")


def test_settling_twice_releases_the_owner_once(deployed, dying):
    job_id = end(dying, owner=ALICE)
    job = dying.get(job_id)

    assert dying.settle(job) is True
    assert dying.settle(job) is False
    assert active_jobs(deployed.table, ALICE) == 0


def test_a_job_with_a_callback_url_waits_for_a_settler_that_can_build_its_event(deployed, dying):
    job_id = end(dying, callback_url=HOOK)

    assert dying.settle(dying.get(job_id)) is False
    assert deployed.job_item(job_id)["active"] == ending_value(job_id)


def test_a_count_already_at_zero_does_not_keep_the_job_unsettled(deployed, dying):
    job_id = end(dying, owner=ALICE)
    deployed.table.put_item(Item={**counter_key(ALICE), "activeJobs": 0})

    assert dying.settle(dying.get(job_id)) is True
    assert "active" not in deployed.job_item(job_id)
    assert active_jobs(deployed.table, ALICE) == 0


def test_a_job_that_ended_before_the_shards_is_settled_by_the_sweeper_from_the_unsharded_partition(
    deployed, clock, dying, sweeper
):
    job_id = end(dying, owner=ALICE)
    deployed.table.update_item(  # as an ended job was written before the index had shards
        Key={"pk": f"JOB#{job_id}", "sk": "JOB"},
        UpdateExpression="SET active = :ending",
        ExpressionAttributeValues={":ending": ENDING},
    )
    past_grace(clock, deployed)

    assert sweeper.sweep()["settled"] == [job_id]

    assert "active" not in deployed.job_item(job_id)
    assert active_jobs(deployed.table, ALICE) == 0


def test_jobs_ended_in_different_shards_are_each_settled_by_the_sweeper(deployed, clock, dying, sweeper):
    ended = [end(dying) for _ in range(12)]
    assert len({deployed.job_item(job_id)["active"] for job_id in ended}) > 1
    past_grace(clock, deployed)

    assert sorted(sweeper.sweep()["settled"]) == sorted(ended)
    assert all("active" not in deployed.job_item(job_id) for job_id in ended)
