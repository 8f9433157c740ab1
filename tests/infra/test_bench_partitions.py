"""The bench's partition report charges each index what DynamoDB charges it for a table write."""

from __future__ import annotations

from scripts.bench_partitions import _indexes, _writes

JOB = {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}, "owner": {"S": "k1"}, "createdAt": {"S": "t0"}, "ttl": {"N": "9"}}


def job(status: str, completed: int, updated: str, active: str | None = "jobs#01") -> dict:
    image = {**JOB, "status": {"S": status}, "completedFiles": {"N": str(completed)}, "updatedAt": {"S": updated}}
    return {**image, "active": {"S": active}} if active else image


def record(old: dict | None, new: dict | None) -> dict:
    keys = {"pk": (new or old)["pk"], "sk": (new or old)["sk"]}
    return {"dynamodb": {"Keys": keys, **({"OldImage": old} if old else {}), **({"NewImage": new} if new else {})}}


def test_a_counted_file_writes_the_active_index_twice_and_the_owner_index_not_at_all():
    records = [record(job("processing", 0, "t1"), job("processing", 1, "t2"))]

    writes, per_file, counted = _writes(records, _indexes())

    assert counted == 1 and per_file == {"active-jobs": 2.0, "owner-jobs": 0.0}
    assert writes["active-jobs"] == {"jobs#01": 2} and writes["table"] == {"JOB#1": 1}


def test_creating_starting_and_settling_a_job_are_the_owner_indexs_only_writes():
    records = [
        record(None, job("queued", 0, "t0")),  # enters both indexes
        record(job("queued", 0, "t0"), job("processing", 0, "t1")),  # status is projected: one write in place
        record(job("processing", 0, "t1"), job("completed", 0, "t2", active="ending#01")),  # moves partition
        record(job("completed", 0, "t2", active="ending#01"), job("completed", 0, "t2", active=None)),  # settled
    ]

    writes, _, counted = _writes(records, _indexes())

    assert counted == 0
    assert writes["owner-jobs"] == {"k1": 3}
    assert writes["active-jobs"] == {"jobs#01": 1 + 2 + 1, "ending#01": 1 + 1}
