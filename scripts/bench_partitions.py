"""`make bench`: how items and writes spread over partition-key values, for the jobs table and each GSI.

DynamoDB serves 1,000 write units/s and 3,000 read units/s per partition, for a table and for each
GSI, and a throttled GSI write throttles the table write that feeds it ("Best practices for designing
and using partition keys effectively"; "Provisioned throughput considerations for global secondary
indexes"). So what matters is the largest share one partition-key value takes.

64 jobs run at once on a fresh stack, spread over 8 API keys (the owner-jobs index is keyed by them).
- Items: one Scan while every job is active. An item is in a GSI iff it has the GSI's key attributes.
- Writes: the table's own stream of changes (NEW_AND_OLD_IMAGES), switched on before the first job.
  Each record is one successful write to the table, under its item's pk. A GSI is charged what
  DynamoDB charges it for the same change: an item entering it is one write under its new key,
  leaving it one under its old, moving in it (a key attribute changed) one of each, staying with a
  projected attribute changed one write; a change the index does not project writes nothing. The
  indexes' keys and projections are read from infra/template.yaml, as the stack was made from it.
  (The emulator records the writes of a transaction it then rolls back, which real DynamoDB does
  not: a count that met another transaction and was retried shows twice, so `counted_files` may
  exceed the files by one or two, and the writes are over- rather than under-counted.)
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

import requests

from chalicelib.polling import wait_until
from scripts.bench_jobs import file_ids
from scripts.bench_support import Stack, fresh_stack
from scripts.package import load_cfn_yaml
from tests.e2e.test_api_keys_over_http import auth, create_key

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"
JOBS = 64
OWNERS = 8
TARGET_SHARE = 0.25  # no index partition value may hold more than a quarter of the index's items
TABLE = "table"


def measure(quick: bool = False) -> dict:
    files = 5 if quick else 20
    settings = {
        "AUTH_MODE": "api-key",
        "RATE_LIMIT_ENABLED": "false",
        "DOWNLOAD_DELAY_MIN_MS": "3000",  # long enough that every job is still active when the Scan runs
        "DOWNLOAD_DELAY_MAX_MS": "3000",
        "LOCAL_CONSUMERS": "4",
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp, fresh_stack(Path(tmp) / "partitions", **settings) as stack:
        report = run(stack, files)
    print(summary_line(report))
    return report


def run(stack: Stack, files: int) -> dict:
    dynamodb, table_name = stack.aws("dynamodb"), stack.stack_env()["JOBS_TABLE_NAME"]
    stream_arn = dynamodb.update_table(
        TableName=table_name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )["TableDescription"]["LatestStreamArn"]
    indexes = _indexes()
    keys = [create_key(stack, "--name", f"bench-{n}")[0] for n in range(OWNERS)]
    with requests.Session() as http:
        for n in range(JOBS):
            response = http.post(
                stack.url("/v1/download/initiate"),
                json={"file_ids": file_ids(files, offset=n * files)},
                headers=auth(keys[n % OWNERS]),
                timeout=30,
            )
            assert response.status_code == 202, response.text
    scanned = list(_scan(dynamodb, table_name))
    active = sum(1 for item in scanned if "active" in item and item["active"]["S"].startswith("jobs"))
    wait_until(lambda: not any("active" in item for item in _scan(dynamodb, table_name)), 600, 0.5, "jobs to settle")
    records = list(_records(stack.aws("dynamodbstreams"), stream_arn))
    writes, per_file, counted = _writes(records, indexes)
    return {
        "jobs": JOBS,
        "jobs_active_at_scan": active,
        "files_per_job": files,
        "owners": OWNERS,
        "target_largest_index_item_share": TARGET_SHARE,
        "items": {name: _spread(_items(scanned, key)) for name, key in {TABLE: "pk", **_hash_keys(indexes)}.items()},
        "writes": {name: _spread(counts) for name, counts in writes.items()},
        "index_writes_per_file": per_file,
        "counted_files": counted,
    }


def _hash_keys(indexes: dict[str, dict]) -> dict[str, str]:
    return {name: index["hash"] for name, index in indexes.items()}


def _indexes() -> dict[str, dict]:
    """Each GSI's key attributes and what else it projects (None: everything), from the template."""
    table = load_cfn_yaml(TEMPLATE)["Resources"]["JobsTable"]["Properties"]
    found = {}
    for index in table["GlobalSecondaryIndexes"]:
        schema = {entry["KeyType"]: entry["AttributeName"] for entry in index["KeySchema"]}
        projection = index["Projection"]
        extra = None if projection["ProjectionType"] == "ALL" else set(projection.get("NonKeyAttributes", []))
        found[index["IndexName"]] = {"hash": schema["HASH"], "keys": set(schema.values()), "extra": extra}
    return found


def _scan(dynamodb: Any, table_name: str) -> Iterator[dict]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name):
        yield from page["Items"]


def _records(streams: Any, stream_arn: str) -> Iterator[dict]:
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                return
            yield from page["Records"]
            iterator = page.get("NextShardIterator")


def _items(scanned: list[dict], hash_key: str) -> Counter:
    """Items per partition-key value; for a GSI, only the items carrying its hash key (sparse indexes)."""
    return Counter(item[hash_key]["S"] for item in scanned if hash_key in item)


def _index_entry(image: dict | None, index: dict) -> tuple[str, dict] | None:
    """(partition value, projected attributes) of an item image in the index, or None when it is not in it."""
    if image is None or not index["keys"] <= set(image):
        return None
    wanted = None if index["extra"] is None else index["keys"] | index["extra"] | {"pk", "sk"}
    projected = {name: value for name, value in image.items() if wanted is None or name in wanted}
    return image[index["hash"]]["S"], projected


def _writes(records: list[dict], indexes: dict[str, dict]) -> tuple[dict[str, Counter], dict[str, float], int]:
    writes: dict[str, Counter] = defaultdict(Counter)
    per_count: Counter = Counter()  # index writes made by the records that counted a file
    files = 0
    for record in records:
        change = record["dynamodb"]
        old, new = change.get("OldImage"), change.get("NewImage")
        writes[TABLE][change["Keys"]["pk"]["S"]] += 1
        counted = _completed(new) > _completed(old)
        files += counted
        for name, index in indexes.items():
            before, after = _index_entry(old, index), _index_entry(new, index)
            touched = [entry[0] for entry in (before, after) if entry is not None]
            if before is not None and after is not None:
                if before[1] == after[1]:
                    touched = []  # nothing the index holds changed: no index write
                elif before[0] == after[0] and _same_keys(before[1], after[1], index):
                    touched = [after[0]]  # a projected attribute changed in place: one write
            for value in touched:
                writes[name][value] += 1
            per_count[name] += len(touched) if counted else 0
    return writes, {name: round(per_count[name] / max(files, 1), 2) for name in indexes}, files


def _same_keys(before: dict, after: dict, index: dict) -> bool:
    return all(before.get(key) == after.get(key) for key in index["keys"])


def _completed(image: dict | None) -> int:
    return int(image["completedFiles"]["N"]) if image and "completedFiles" in image else 0


def _spread(counts: Counter) -> dict:
    total = sum(counts.values())
    value, largest = counts.most_common(1)[0] if counts else ("", 0)
    return {
        "total": total,
        "values": len(counts),
        "largest_value": value,
        "largest": largest,
        "largest_share": round(largest / total, 3) if total else 0.0,
    }


def summary_line(report: dict) -> str:
    items, writes, per_file = report["items"], report["writes"], report["index_writes_per_file"]
    shares = ", ".join(
        f"{name} items {items[name]['largest_share']:.0%} / writes {writes[name]['largest_share']:.0%} "
        f"of {writes[name]['total']} ({writes[name]['values']} values)"
        for name in items
    )
    worst = max(items[name]["largest_share"] for name in items if name != TABLE)
    verdict = "meets" if worst <= report["target_largest_index_item_share"] else "MISSES"
    return (
        f"partitions, {report['jobs']} jobs x {report['files_per_job']} files, largest value's share: {shares}; "
        f"index writes per counted file: "
        + ", ".join(f"{name} {value}" for name, value in per_file.items())
        + f" ({verdict} the <= {report['target_largest_index_item_share']:.0%} index target)"
    )
