"""How jobs look in the table: items round-trip to the models, transitions carry their guard."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chalicelib.api.validation import MAX_FILE_ID, MIN_FILE_ID
from chalicelib.jobs.items import (
    ACTIVE,
    ACTIVE_SHARDS,
    ENDING,
    active_value,
    ending_value,
    file_item,
    file_result_from_item,
    job_from_item,
    new_job_item,
    pack_file_ids,
    partitions,
    shard_of,
    transition_update,
    unpack_file_ids,
)
from chalicelib.models import FileResult, FileStatus, InitiateRequest, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
JOB_ID = "3f0c2f7e-1111-4111-8111-111111111111"


def test_a_new_job_item_reads_back_as_a_queued_job_in_the_active_index():
    item = new_job_item(JOB_ID, InitiateRequest((70000, 70003)), T0, T0 + timedelta(days=1))

    job = job_from_item(item)

    assert (job.status, job.file_ids, job.created_at, job.expires_at) == (
        JobStatus.QUEUED,
        (70000, 70003),
        T0,
        T0 + timedelta(days=1),
    )
    assert item["active"] == active_value(JOB_ID) and item["ttl"] == int((T0 + timedelta(days=1)).timestamp())


@pytest.mark.parametrize(
    "file_ids",
    [
        (70000,),
        tuple(range(70000, 71000)),
        (MAX_FILE_ID, MIN_FILE_ID, MAX_FILE_ID - 1, 70000),  # order kept, deltas of both signs
        tuple(random.Random(7).sample(range(MIN_FILE_ID, MAX_FILE_ID + 1), 1000)),
    ],
)
def test_file_ids_pack_and_unpack_in_order(file_ids):
    assert unpack_file_ids(pack_file_ids(file_ids)) == file_ids


def test_a_thousand_packed_file_ids_keep_a_status_read_within_one_read_unit():
    consecutive = pack_file_ids(range(70000, 71000))
    scattered = pack_file_ids(random.Random(7).sample(range(MIN_FILE_ID, MAX_FILE_ID + 1), 1000))

    assert len(consecutive) < 100
    assert len(scattered) < 3900  # of the 4 KB a strongly consistent read unit covers


def test_a_job_written_before_the_packing_still_reads():
    item = new_job_item(JOB_ID, InitiateRequest((70000, 70003)), T0, T0)
    del item["fileIdsPacked"]
    item["fileIds"] = [Decimal(70000), Decimal(70003)]

    assert job_from_item(item).file_ids == (70000, 70003)


def test_an_unknown_packing_is_refused_rather_than_misread():
    with pytest.raises(ValueError):
        unpack_file_ids(b"\x02" + pack_file_ids((70000,))[1:])


def test_numbers_come_back_from_dynamodb_decimals_as_ints():
    item = {**new_job_item(JOB_ID, InitiateRequest((70000,)), T0, T0), "completedFiles": Decimal(1), "size": Decimal(7)}

    job = job_from_item(item)

    assert (job.completed_files, job.size, job.resumes) == (1, 7, 0)


def test_a_file_item_round_trips_and_keeps_no_size_when_there_is_none():
    available = FileResult(70000, FileStatus.AVAILABLE, 2048)
    missing = FileResult(70001, FileStatus.UNAVAILABLE)

    assert file_result_from_item(file_item(JOB_ID, available, T0, T0)) == available
    assert "size" not in file_item(JOB_ID, missing, T0, T0)
    assert file_result_from_item(file_item(JOB_ID, missing, T0, T0)) == missing


@pytest.mark.parametrize("target", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_terminal_transition_moves_the_job_to_the_ending_partition_until_it_is_settled(target):
    update = transition_update(JOB_ID, target, T0)

    assert "active = :ending" in update["UpdateExpression"]
    assert update["ExpressionAttributeValues"][":ending"] == ending_value(JOB_ID)
    assert "REMOVE" not in update["UpdateExpression"]


def test_starting_a_job_puts_it_in_its_own_active_shard():
    update = transition_update(JOB_ID, JobStatus.PROCESSING, T0)

    assert "active = :active" in update["UpdateExpression"]
    assert update["ExpressionAttributeValues"][":active"] == active_value(JOB_ID)


def test_a_jobs_shard_is_stable_and_names_both_its_partitions():
    shard = shard_of(JOB_ID)

    assert shard == shard_of(str(uuid.UUID(JOB_ID))) and 0 <= shard < ACTIVE_SHARDS
    assert (active_value(JOB_ID), ending_value(JOB_ID)) == (f"{ACTIVE}#{shard:02d}", f"{ENDING}#{shard:02d}")
    assert shard_of(JOB_ID) == 1  # a fixed id keeps its shard across processes and releases


def test_ten_thousand_job_ids_spread_over_the_shards_with_none_above_twice_the_mean():
    rng = random.Random(19)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000)]

    per_shard = Counter(shard_of(job_id) for job_id in ids)

    assert set(per_shard) == set(range(ACTIVE_SHARDS))
    assert max(per_shard.values()) <= 2 * len(ids) / ACTIVE_SHARDS


def test_readers_query_every_shard_and_the_unsharded_partition_of_older_jobs():
    assert partitions(ACTIVE) == [f"jobs#{shard:02d}" for shard in range(ACTIVE_SHARDS)] + ["jobs"]
    assert len(set(partitions(ENDING))) == ACTIVE_SHARDS + 1 and partitions(ENDING)[-1] == "ending"


def test_a_transition_is_guarded_by_its_allowed_sources_and_the_ttl():
    update = transition_update(JOB_ID, JobStatus.COMPLETED, T0, sets={"size": 3}, extra_condition="completedFiles >= 1")

    values = update["ExpressionAttributeValues"]
    assert update["ConditionExpression"] == "#status IN (:from0) AND #ttl >= :nowEpoch AND (completedFiles >= 1)"
    assert (values[":from0"], values[":target"], values[":s0"]) == ("processing", "completed", 3)
    assert update["ExpressionAttributeNames"]["#s0"] == "size"
