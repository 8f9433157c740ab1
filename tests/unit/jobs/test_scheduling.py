"""Fair scheduling by position: a job keeps at most its window of files released and not started,
each started file releasing the next; a resume re-sends only what is neither counted nor waiting.
Pure functions over a Job; no AWS."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from chalicelib.aws.queue import MessageKind
from chalicelib.jobs import scheduling
from chalicelib.models import Job, JobStatus

MOMENT = datetime(2026, 1, 1, tzinfo=timezone.utc)
FILES = tuple(range(70000, 70010))


def job(file_ids=FILES, window: int | None = 3, **fields) -> Job:
    return Job("job-1", JobStatus.PROCESSING, tuple(file_ids), MOMENT, MOMENT, MOMENT, window=window, **fields)


def test_fan_out_releases_the_first_window_of_files():
    assert scheduling.first_released(job()) == [70000, 70001, 70002]


def test_a_job_smaller_than_its_window_releases_every_file_at_once():
    assert scheduling.first_released(job(FILES[:2], window=4)) == [70000, 70001]


def test_a_started_file_releases_the_file_one_window_further_on():
    released = scheduling.released_by(job(), 70004)

    assert (released.kind, released.job_id, released.file_id) == (MessageKind.FILE, "job-1", 70007)


@pytest.mark.parametrize("tail", [70007, 70008, 70009])
def test_a_tail_file_releases_nothing(tail):
    assert scheduling.released_by(job(), tail) is None


def test_a_job_started_before_windows_existed_has_every_file_out_already():
    legacy = job(window=None)

    assert scheduling.first_released(legacy) == list(FILES)
    assert scheduling.released_by(legacy, 70000) is None


NOW = 1_000_000.0


def test_a_resume_resends_only_files_released_and_neither_counted_nor_waiting():
    counted = {70000, 70002}
    waits = {70000: NOW - 50, 70003: NOW + 50, 70004: NOW - 5}  # 70003 still waits; 70004 is due, uncounted

    # 70001 never started; 70004 started and is due, its count lost; 70005 was released by 70002,
    # 70006 by 70003 (which itself still waits), 70007 by 70004.
    assert scheduling.released_pending(job(), counted, waits, NOW) == [70001, 70004, 70005, 70006, 70007]


def test_a_resume_of_a_job_whose_files_all_wait_or_are_counted_resends_nothing():
    waits = {file_id: NOW + 10 for file_id in FILES[5:]}

    assert scheduling.released_pending(job(), set(FILES[:5]), waits, NOW) == []
    assert scheduling.released_pending(job(), set(FILES), {}, NOW) == []


def test_every_message_of_a_job_carries_its_group_the_job_until_jobs_have_owners():
    messages = [
        scheduling.job_message(job()),
        scheduling.bundle_message(job()),
        *scheduling.file_messages(job(), FILES),
    ]

    assert {message.group for message in messages} == {"job-1"}


@pytest.mark.parametrize("seed", range(20))
def test_in_any_start_order_at_most_a_window_waits_to_start_and_every_file_starts_once(seed):
    """Workers start released files in a random order; each start releases what the rule says."""
    rng = random.Random(seed)
    scheduled = job(range(70000, 70000 + rng.randint(1, 40)), window=rng.randint(1, 6))
    out = set(scheduling.first_released(scheduled))
    started: list[int] = []
    most_out = len(out)

    while out:
        chosen = rng.choice(sorted(out))
        out.remove(chosen)
        started.append(chosen)
        released = scheduling.released_by(scheduled, chosen)
        if released is not None:
            assert released.file_id not in started and released.file_id not in out
            out.add(released.file_id)
        most_out = max(most_out, len(out))

    assert sorted(started) == list(scheduled.file_ids)
    assert most_out <= scheduling.window(scheduled)
