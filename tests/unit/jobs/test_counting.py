"""Counting a file (jobs/counting.py): a count given the job's size says whether files are left,
so only the count that completes a job reads it."""

from __future__ import annotations

import threading

import pytest

from chalicelib.jobs.counting import RecordOutcome, outcome_of_cancellation
from chalicelib.jobs.store import JobStore
from chalicelib.models import FileResult, FileStatus, InitiateRequest

FILES = (70000, 70001, 70002)


@pytest.fixture
def store(deployed, clock):
    return JobStore(deployed.table, 3600, clock=clock)


def processing_job(store, *file_ids) -> str:
    job, _ = store.create(InitiateRequest(file_ids))
    assert store.start_processing(job.job_id)
    return job.job_id


def result(file_id: int) -> FileResult:
    return FileResult(file_id, FileStatus.AVAILABLE, 10)


def test_given_the_size_every_count_but_the_last_says_files_are_left(store):
    job_id = processing_job(store, *FILES)

    outcomes = [store.record_file(job_id, result(file_id), not_last_of=len(FILES)) for file_id in FILES]

    assert outcomes == [RecordOutcome.NOT_LAST, RecordOutcome.NOT_LAST, RecordOutcome.RECORDED]
    assert store.get(job_id).completed_files == 3


def test_a_one_file_job_s_only_count_is_its_last(store):
    job_id = processing_job(store, 70000)

    assert store.record_file(job_id, result(70000), not_last_of=1) is RecordOutcome.RECORDED
    assert store.get(job_id).all_files_done


def test_given_the_size_a_closed_job_still_counts_nothing(store):
    job_id = processing_job(store, *FILES)
    store.cancel(job_id)

    assert store.record_file(job_id, result(70000), not_last_of=len(FILES)) is RecordOutcome.JOB_CLOSED
    assert store.get(job_id).completed_files == 0


def test_given_the_size_a_duplicate_is_still_a_duplicate(store):
    job_id = processing_job(store, *FILES)
    store.record_file(job_id, result(70000), not_last_of=len(FILES))

    assert store.record_file(job_id, result(70000), not_last_of=len(FILES)) is RecordOutcome.DUPLICATE
    assert store.get(job_id).completed_files == 1


def test_of_racing_final_counts_exactly_one_is_told_it_may_be_last(store):
    """Whichever count makes the total fails `completedFiles < size - 1` and reads the job."""
    job_id = processing_job(store, *FILES)
    store.record_file(job_id, result(70000), not_last_of=len(FILES))
    outcomes: list[RecordOutcome] = []
    barrier = threading.Barrier(2)

    def count(file_id: int) -> None:
        barrier.wait()
        outcomes.append(store.record_file(job_id, result(file_id), not_last_of=len(FILES)))

    threads = [threading.Thread(target=count, args=(file_id,)) for file_id in (70001, 70002)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcome.value for outcome in outcomes) == ["not_last", "recorded"]
    assert store.get(job_id).completed_files == 3


@pytest.mark.parametrize(
    ("reasons", "outcome"),
    [
        (["ConditionalCheckFailed", "None"], RecordOutcome.DUPLICATE),
        (["ConditionalCheckFailed", "ConditionalCheckFailed", "None"], RecordOutcome.DUPLICATE),
        (["None", "ConditionalCheckFailed"], RecordOutcome.JOB_CLOSED),
        (["None", "TransactionConflict"], None),
        ([], None),
    ],
)
def test_a_refused_count_is_read_from_which_condition_failed(reasons, outcome):
    assert outcome_of_cancellation(reasons) is outcome
