"""Job and file states, the forward-only transition table and the values built on them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.models import (
    ALLOWED_FROM,
    FileResult,
    FileStatus,
    Job,
    JobStatus,
    iso,
    parse_iso,
    result_key,
    source_key,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def job(**overrides) -> Job:
    values = dict(
        job_id="3f0c2f7e-1111-4111-8111-111111111111",
        status=JobStatus.PROCESSING,
        file_ids=(70000, 70003, 70007),
        created_at=T0,
        updated_at=T0 + timedelta(seconds=5),
        expires_at=T0 + timedelta(days=1),
    )
    values.update(overrides)
    return Job(**values)


# DESIGN.md: queued -> processing -> completed | failed, and queued | processing -> cancelled.
CONTRACT_TRANSITIONS = {
    (JobStatus.QUEUED, JobStatus.PROCESSING),
    (JobStatus.PROCESSING, JobStatus.COMPLETED),
    (JobStatus.QUEUED, JobStatus.FAILED),
    (JobStatus.PROCESSING, JobStatus.FAILED),
    (JobStatus.QUEUED, JobStatus.CANCELLED),
    (JobStatus.PROCESSING, JobStatus.CANCELLED),
}


def test_transition_table_is_exactly_the_contract():
    allowed = {(source, target) for target, sources in ALLOWED_FROM.items() for source in sources}

    assert allowed == CONTRACT_TRANSITIONS


@pytest.mark.parametrize("terminal", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_nothing_leaves_a_terminal_status(terminal):
    assert terminal.terminal
    assert all(terminal not in sources for sources in ALLOWED_FROM.values())


@pytest.mark.parametrize("active", [JobStatus.QUEUED, JobStatus.PROCESSING])
def test_queued_and_processing_are_not_terminal(active):
    assert not active.terminal


@pytest.mark.parametrize(("completed", "progress"), [(0, 0), (1, 33), (2, 66), (3, 100)])
def test_progress_is_the_floor_of_the_done_share(completed, progress):
    assert job(completed_files=completed).progress == progress


def test_completed_job_shows_full_progress():
    assert job(status=JobStatus.COMPLETED, completed_files=3).progress == 100


def test_job_without_files_has_zero_progress():
    assert job(file_ids=()).progress == 0


def test_all_files_done_only_when_every_file_is_counted():
    assert not job(completed_files=2).all_files_done
    assert job(completed_files=3).all_files_done


def test_iso_round_trips_at_second_precision_in_utc():
    moment = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=timezone(timedelta(hours=2)))

    text = iso(moment)

    assert text == "2026-03-04T03:06:07Z"
    assert parse_iso(text) == datetime(2026, 3, 4, 3, 6, 7, tzinfo=timezone.utc)


def test_missing_times_stay_missing():
    assert iso(None) is None
    assert parse_iso(None) is None
    assert parse_iso("") is None


def test_object_keys_follow_the_bucket_layout():
    assert source_key(70000) == "downloads/70000.zip"
    assert result_key("abc", "b1") == "results/abc/b1.zip"
    assert FileResult(70007, FileStatus.AVAILABLE, 10).s3_key == "downloads/70007.zip"
