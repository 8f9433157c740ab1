"""The sweeper's store: stalled jobs found page by page, writes that hold only while a job is as read."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from chalicelib.jobs.items import ACTIVE, ACTIVE_SHARDS, active_value, new_job_item, shard_of
from chalicelib.jobs.sweeps import PAGE_SIZE, SweepingJobStore
from chalicelib.models import FileResult, FileStatus, InitiateRequest, JobStatus

TTL = 3600


@pytest.fixture
def store(deployed, clock):
    return SweepingJobStore(deployed.table, TTL, clock=clock)


def processing_job(store, *file_ids):
    job, _ = store.create(InitiateRequest(file_ids))
    assert store.start_processing(job.job_id)
    return job.job_id


def test_stalled_jobs_are_those_idle_past_the_threshold_and_not_terminal(store, clock):
    idle, _ = store.create(InitiateRequest((70000,)))
    idle_processing = processing_job(store, 70001)
    finished = processing_job(store, 70002)
    store.record_file(finished, FileResult(70002, FileStatus.AVAILABLE, 10))
    store.complete(finished, None, None)
    cancelled, _ = store.create(InitiateRequest((70003,)))
    store.cancel(cancelled.job_id)
    clock.advance(500)
    fresh, _ = store.create(InitiateRequest((70004,)))
    clock.advance(500)

    stalled = store.stalled_job_ids(idle_seconds=900)

    assert sorted(stalled) == sorted([idle.job_id, idle_processing])
    assert fresh.job_id not in stalled


def one_job_id_per_shard() -> list[str]:
    rng, by_shard = random.Random(32), {}
    while len(by_shard) < ACTIVE_SHARDS:
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        by_shard.setdefault(shard_of(job_id), job_id)
    return [by_shard[shard] for shard in range(ACTIVE_SHARDS)]


def put_job(deployed, clock, job_id: str, active: str | None = None) -> None:
    """A queued job as the table holds it; `active` overrides its index partition (a job from before the shards)."""
    item = new_job_item(job_id, InitiateRequest((70000,)), clock.now, clock.now + timedelta(seconds=TTL))
    deployed.table.put_item(Item={**item, **({"active": active} if active else {})})


def test_stalled_jobs_are_found_in_every_shard_and_in_the_unsharded_partition_oldest_first(store, deployed, clock):
    unsharded = str(uuid.uuid4())
    put_job(deployed, clock, unsharded, active=ACTIVE)  # written before the index had shards
    sharded = []
    for job_id in one_job_id_per_shard():
        clock.advance(1)
        put_job(deployed, clock, job_id)
        sharded.append(job_id)
    clock.advance(1000)

    stalled = store.stalled_job_ids(idle_seconds=900)

    assert stalled == [unsharded, *sharded]
    assert store.stalled_job_ids(idle_seconds=900, max_entries=3) == [unsharded, *sharded[:2]]


def test_resuming_a_job_from_before_the_shards_moves_it_to_its_own_shard(store, deployed, clock):
    job_id = str(uuid.uuid4())
    put_job(deployed, clock, job_id, active=ACTIVE)
    clock.advance(1000)

    assert store.note_resume(store.read_stalled(job_id, 900)) == 1

    assert deployed.job_item(job_id)["active"] == active_value(job_id)
    clock.advance(1000)
    assert store.stalled_job_ids(idle_seconds=900) == [job_id]


def test_counting_a_file_of_a_job_from_before_the_shards_moves_it_to_its_own_shard(store, deployed, clock):
    job_id = str(uuid.uuid4())
    put_job(deployed, clock, job_id, active=ACTIVE)
    assert store.start_processing(job_id)
    deployed.table.update_item(  # still unsharded once processing, as a job started before the shards
        Key={"pk": f"JOB#{job_id}", "sk": "JOB"},
        UpdateExpression="SET active = :unsharded",
        ExpressionAttributeValues={":unsharded": ACTIVE},
    )

    store.record_file(job_id, FileResult(70000, FileStatus.AVAILABLE, 10))

    assert deployed.job_item(job_id)["active"] == active_value(job_id)


def test_stalled_jobs_are_read_across_index_pages(store, clock):
    created = [store.create(InitiateRequest((70000,)))[0].job_id for _ in range(PAGE_SIZE + 5)]
    clock.advance(1000)

    assert sorted(store.stalled_job_ids(idle_seconds=900)) == sorted(created)
    assert len(store.stalled_job_ids(idle_seconds=900, max_entries=PAGE_SIZE)) == PAGE_SIZE


def test_a_stalled_job_past_its_ttl_is_still_read_by_the_sweeper(store, clock):
    job, _ = store.create(InitiateRequest((70000,)))
    clock.advance(TTL + 1)

    assert store.get(job.job_id) is None
    stalled = store.read_stalled(job.job_id, idle_seconds=900)
    assert stalled is not None and store.past_ttl(stalled)


def test_a_job_that_moved_since_the_index_listed_it_is_not_stalled(store, clock):
    job_id = processing_job(store, 70000, 70001)
    clock.advance(1000)
    store.record_file(job_id, FileResult(70000, FileStatus.AVAILABLE, 10))  # progress, after the listing

    assert store.read_stalled(job_id, idle_seconds=900) is None


def test_note_resume_counts_and_refreshes_the_idle_clock(store, clock):
    job, _ = store.create(InitiateRequest((70000,)))
    clock.advance(1000)

    first = store.note_resume(store.read_stalled(job.job_id, 900))
    clock.advance(1000)
    second = store.note_resume(store.read_stalled(job.job_id, 900))

    assert [first, second] == [1, 2]
    assert store.stalled_job_ids(idle_seconds=900) == []


def test_a_resume_or_verdict_on_a_job_changed_since_it_was_read_is_refused(store, clock):
    job, _ = store.create(InitiateRequest((70000,)))
    clock.advance(1000)
    seen = store.read_stalled(job.job_id, 900)
    clock.advance(1)
    assert store.note_resume(seen) == 1  # a twin sweep got there first

    assert store.note_resume(seen) is None
    assert store.fail_unchanged(seen, "stalled") is False
    assert store.get(job.job_id).resumes == 1


def test_note_resume_on_a_job_that_became_terminal_is_refused(store, clock):
    job, _ = store.create(InitiateRequest((70000,)))
    clock.advance(1000)
    seen = store.read_stalled(job.job_id, 900)
    assert store.cancel(job.job_id)

    assert store.note_resume(seen) is None
    assert store.get(job.job_id).resumes == 0


def test_a_job_past_its_ttl_can_be_failed_by_the_sweeper_and_is_then_kept_and_unlisted(store, clock):
    job, _ = store.create(InitiateRequest((70000,)))
    clock.advance(TTL + 1)
    seen = store.read_stalled(job.job_id, 900)

    assert store.fail_unchanged(seen, "did not finish within 1 hour") is True

    failed = store.get(job.job_id)
    assert (failed.status, failed.error) == (JobStatus.FAILED, "did not finish within 1 hour")
    clock.advance(10)
    assert store.stalled_job_ids(idle_seconds=0) == []
