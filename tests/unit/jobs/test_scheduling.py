"""Fair scheduling by position: a job keeps at most its window of files out, and the last file
counted always asks for the bundle. Pure functions over a Job; no AWS."""

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


def test_a_counted_file_releases_the_file_one_window_further_on():
    released = scheduling.released_by(job(), 70004)

    assert (released.kind, released.job_id, released.file_id) == (MessageKind.FILE, "job-1", 70007)


@pytest.mark.parametrize("tail", [70007, 70008, 70009])
def test_a_tail_file_asks_for_the_bundle_instead(tail):
    released = scheduling.released_by(job(), tail)

    assert (released.kind, released.file_id) == (MessageKind.BUNDLE, None)


def test_a_job_started_before_windows_existed_has_every_file_out_already():
    legacy = job(window=None)

    assert scheduling.first_released(legacy) == list(FILES)
    assert scheduling.released_by(legacy, 70000).kind is MessageKind.BUNDLE


def test_a_resume_resends_only_files_released_and_not_counted():
    counted = {70000, 70002, 70003}

    # 70001 never finished (so 70004 is not released yet); 70005 was released by 70002, 70006 by 70003.
    assert scheduling.released_pending(job(), counted) == [70001, 70005, 70006]


def test_a_resume_of_a_job_with_every_file_counted_resends_nothing():
    assert scheduling.released_pending(job(), set(FILES)) == []


def test_every_message_of_a_job_carries_its_group_the_job_until_jobs_have_owners():
    messages = [
        scheduling.job_message(job()),
        scheduling.bundle_message(job()),
        *scheduling.file_messages(job(), FILES),
    ]

    assert {message.group for message in messages} == {"job-1"}


@pytest.mark.parametrize("seed", range(20))
def test_in_any_completion_order_at_most_a_window_is_out_and_the_last_count_asks_for_the_bundle(seed):
    """Workers finish released files in a random order; each count releases what the rule says."""
    rng = random.Random(seed)
    scheduled = job(range(70000, 70000 + rng.randint(1, 40)), window=rng.randint(1, 6))
    out = set(scheduling.first_released(scheduled))
    counted: list[int] = []
    bundle_requests: list[int] = []
    most_out = len(out)

    while out:
        finished = rng.choice(sorted(out))
        out.remove(finished)
        counted.append(finished)
        released = scheduling.released_by(scheduled, finished)
        if released.kind is MessageKind.BUNDLE:
            bundle_requests.append(len(counted))
        else:
            assert released.file_id not in counted and released.file_id not in out
            out.add(released.file_id)
        most_out = max(most_out, len(out))

    assert sorted(counted) == list(scheduled.file_ids)
    assert most_out <= scheduling.window(scheduled)
    assert bundle_requests[-1] == scheduled.total_files  # the bundle is asked for after the last count
