"""Job store: conditional writes that only move forward, exactly-once counting, TTL, the sweeper's index."""

from __future__ import annotations

import pytest

from chalicelib.jobs.store import ClaimOutcome, IdempotencyConflict, RecordOutcome
from chalicelib.models import FileResult, FileStatus, InitiateRequest, JobStatus, iso

TTL = 3600


@pytest.fixture
def store(deployed, clock):
    from chalicelib.jobs.store import JobStore

    return JobStore(deployed.table, TTL, clock=clock)


def processing_job(store, *file_ids):
    job, _ = store.create(InitiateRequest(file_ids))
    assert store.start_processing(job.job_id)
    return job.job_id


def count_all(store, job_id, status=FileStatus.AVAILABLE):
    for file_id in store.get(job_id).file_ids:
        store.record_file(job_id, FileResult(file_id, status, 10))


def test_created_job_is_queued_with_its_times_from_the_clock(store, clock):
    job, created = store.create(InitiateRequest((70000, 70007)))

    stored = store.get(job.job_id)
    assert created is True
    assert stored == job
    assert (stored.status, stored.file_ids, stored.completed_files, stored.available_files) == (
        JobStatus.QUEUED,
        (70000, 70007),
        0,
        0,
    )
    assert (iso(stored.created_at), iso(stored.expires_at)) == (iso(clock.now), iso(clock.now + _ttl()))


def _ttl():
    from datetime import timedelta

    return timedelta(seconds=TTL)


def test_unknown_job_reads_as_none(store):
    assert store.get("3f0c2f7e-1111-4111-8111-111111111111") is None


def test_job_past_its_ttl_reads_as_gone_before_dynamodb_deletes_it(store, clock, deployed):
    job, _ = store.create(InitiateRequest((70000,)))

    clock.advance(TTL + 1)

    assert deployed.job_item(job.job_id) is not None  # TTL deletion is lazy (and moto never runs it)
    assert store.get(job.job_id) is None


def test_job_past_its_ttl_cannot_change_status(store, clock):
    job, _ = store.create(InitiateRequest((70000,)))

    clock.advance(TTL + 1)

    assert store.cancel(job.job_id) is False
    assert store.start_processing(job.job_id) is False


def test_a_job_that_ends_is_kept_for_the_ttl_from_its_end(store, clock):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)
    clock.advance(TTL - 10)  # it ran almost as long as it may

    ended = clock.now

    assert store.complete(job_id, "results/x.zip", 10)
    clock.advance(TTL - 10)  # past the TTL counted from creation

    kept = store.get(job_id)
    assert kept is not None and kept.status is JobStatus.COMPLETED
    assert iso(kept.expires_at) == iso(ended + _ttl())
    assert deployed_ttl(store, job_id) == int((ended + _ttl()).timestamp())


def deployed_ttl(store, job_id):
    return int(store._table.get_item(Key={"pk": f"JOB#{job_id}", "sk": "JOB"})["Item"]["ttl"])


def test_same_idempotency_key_and_body_return_the_existing_job(store):
    first, first_created = store.create(InitiateRequest((70000, 70007), "order-42"))

    again, again_created = store.create(InitiateRequest((70000, 70007), "order-42"))

    assert (first_created, again_created) == (True, False)
    assert again.job_id == first.job_id


def test_same_idempotency_key_with_another_body_is_a_conflict_naming_the_job(store):
    first, _ = store.create(InitiateRequest((70000,), "order-42"))

    with pytest.raises(IdempotencyConflict) as conflict:
        store.create(InitiateRequest((70001,), "order-42"))

    assert conflict.value.job_id == first.job_id


def test_expired_idempotency_key_may_be_used_again(store, clock):
    first, _ = store.create(InitiateRequest((70000,), "order-42"))
    clock.advance(TTL + 1)

    second, created = store.create(InitiateRequest((70001,), "order-42"))

    assert created is True
    assert second.job_id != first.job_id


def test_queued_job_moves_to_processing_once(store):
    job, _ = store.create(InitiateRequest((70000,)))

    assert store.start_processing(job.job_id) is True
    assert store.start_processing(job.job_id) is False
    assert store.get(job.job_id).status is JobStatus.PROCESSING


def test_cancelling_a_completed_job_is_refused(store):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)
    assert store.complete(job_id, "results/x.zip", 10)

    assert store.cancel(job_id) is False
    assert store.fail(job_id, "late") is False
    assert store.get(job_id).status is JobStatus.COMPLETED


def test_completing_a_cancelled_job_is_refused(store):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)
    assert store.cancel(job_id)

    assert store.complete(job_id, "results/x.zip", 10) is False
    after = store.get(job_id)
    assert (after.status, after.result_key) == (JobStatus.CANCELLED, None)


def test_a_failed_job_stays_failed_with_its_reason(store):
    job_id = processing_job(store, 70000)
    assert store.fail(job_id, "file 70000 failed")

    assert store.cancel(job_id) is False
    assert store.fail(job_id, "another reason") is False
    after = store.get(job_id)
    assert (after.status, after.error) == (JobStatus.FAILED, "file 70000 failed")


def test_queued_job_cannot_complete(store):
    job, _ = store.create(InitiateRequest((70000,)))

    assert store.complete(job.job_id, None, None) is False


def test_job_completes_only_once_every_file_is_counted(store):
    job_id = processing_job(store, 70000, 70007)
    store.record_file(job_id, FileResult(70000, FileStatus.AVAILABLE, 10))

    assert store.complete(job_id, None, None) is False
    store.record_file(job_id, FileResult(70007, FileStatus.UNAVAILABLE))
    assert store.complete(job_id, None, None) is True


def test_terminal_job_leaves_the_active_index(store, deployed):
    job_id = processing_job(store, 70000)

    store.cancel(job_id)

    assert "active" not in deployed.job_item(job_id)


def test_file_is_counted_once_however_often_it_is_recorded(store):
    job_id = processing_job(store, 70000, 70003, 70007)

    outcomes = [store.record_file(job_id, FileResult(70000, FileStatus.AVAILABLE, 10)) for _ in range(3)]

    after = store.get(job_id)
    assert outcomes == [RecordOutcome.RECORDED, RecordOutcome.DUPLICATE, RecordOutcome.DUPLICATE]
    assert (after.completed_files, after.available_files) == (1, 1)
    assert store.file_results(job_id) == {70000: FileResult(70000, FileStatus.AVAILABLE, 10)}


def test_unavailable_file_counts_as_done_but_not_available(store):
    job_id = processing_job(store, 70000, 70003)

    store.record_file(job_id, FileResult(70003, FileStatus.UNAVAILABLE))

    after = store.get(job_id)
    assert (after.completed_files, after.available_files) == (1, 0)


def test_file_finishing_after_cancel_is_not_counted(store):
    job_id = processing_job(store, 70000, 70007)
    store.cancel(job_id)

    outcome = store.record_file(job_id, FileResult(70000, FileStatus.AVAILABLE, 10))

    assert outcome is RecordOutcome.JOB_CLOSED
    assert store.get(job_id).completed_files == 0
    assert store.file_results(job_id) == {}


def test_bundle_claim_waits_for_every_file(store):
    job_id = processing_job(store, 70000, 70007)
    store.record_file(job_id, FileResult(70000, FileStatus.AVAILABLE, 10))

    assert store.claim_bundle(job_id, "message-a", 900) is ClaimOutcome.NOT_READY


def test_only_one_message_holds_the_bundle_claim(store):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)

    first = store.claim_bundle(job_id, "message-a", 900)
    second = store.claim_bundle(job_id, "message-b", 900)

    assert (first, second) == (ClaimOutcome.CLAIMED, ClaimOutcome.HELD_ELSEWHERE)


def test_redelivery_of_the_claiming_message_takes_the_claim_over(store):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)
    store.claim_bundle(job_id, "message-a", 900)

    assert store.claim_bundle(job_id, "message-a", 900) is ClaimOutcome.CLAIMED


def test_lapsed_bundle_lease_can_be_claimed_by_another_message(store, clock):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)
    store.claim_bundle(job_id, "message-a", 900)

    clock.advance(901)

    assert store.claim_bundle(job_id, "message-b", 900) is ClaimOutcome.CLAIMED


def test_bundle_claim_on_a_finished_job_is_not_ready(store):
    job_id = processing_job(store, 70000)
    count_all(store, job_id)
    store.complete(job_id, None, None)

    assert store.claim_bundle(job_id, "message-a", 900) is ClaimOutcome.NOT_READY
