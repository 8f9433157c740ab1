"""Files counted and jobs ended are recorded as metrics once, by the write that does it."""

from __future__ import annotations

import pytest

from chalicelib.models import FileResult, FileStatus, InitiateRequest

TTL = 3600


@pytest.fixture
def store(deployed, clock):
    from chalicelib.jobs.store import JobStore

    return JobStore(deployed.table, TTL, clock=clock)


def test_a_file_counted_twice_is_recorded_once_prepared_or_failed(store, emitted):
    job, _ = store.create(InitiateRequest((70000, 70001)))
    store.start_processing(job.job_id)

    store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, 10))
    store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, 10))  # a redelivery
    store.record_file(job.job_id, FileResult(70001, FileStatus.UNAVAILABLE, None))

    [line] = emitted()
    assert line["FilesPrepared"] == [1.0] and line["FilesFailed"] == [1.0]


def test_an_ended_job_records_its_outcome_and_duration_once(store, clock, emitted):
    job, _ = store.create(InitiateRequest((70000,)))
    store.start_processing(job.job_id)
    store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, 10))
    clock.advance(42)

    store.complete(job.job_id, "results/x.zip", 10, "0" * 64)
    store.settle_ended(store.get(job.job_id))  # the sweeper settling it again changes nothing

    [line] = emitted()
    assert line["JobsCompleted"] == [1.0] and line["JobDurationSeconds"] == [42.0]
    assert "JobsFailed" not in line


def test_a_cancelled_job_is_recorded_as_cancelled(store, emitted):
    job, _ = store.create(InitiateRequest((70000,)))

    store.cancel(job.job_id)

    [line] = emitted()
    assert line["JobsCancelled"] == [1.0]
