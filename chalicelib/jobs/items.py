"""How jobs look in DynamoDB: keys, items to and from the models, a transition's update.

One table, two item kinds under a job's partition:
  pk=JOB#<id>  sk=JOB          the job: status, counters, result, `ttl`, its file ids packed
  pk=JOB#<id>  sk=FILE#<fid>   one per finished file (absent = pending)
  pk=JOB#<id>  sk=WAIT#<fid>   one per started file: when it is due (jobs/waits.py)
and pk=IDEMPOTENCY#<sha256([owner + "\n"] + key)> sk=IDEMPOTENCY for Idempotency-Key reuse.
A job created with an API key carries `owner` (the key id), which puts it in the
owner-jobs index (owners.py).
Pure functions: jobs.JobStore does the reads and the conditional writes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from datetime import datetime
from typing import Any, Iterable

from chalicelib.models import (
    ALLOWED_FROM,
    BuiltBundle,
    CallbackState,
    CallbackStatus,
    FileResult,
    FileStatus,
    InitiateRequest,
    Job,
    JobStatus,
    iso,
    parse_iso,
)

JOB_SK = "JOB"
IDEMPOTENCY_SK = "IDEMPOTENCY"
ACTIVE_INDEX = "active-jobs"
ACTIVE = "jobs"  # the sparse GSI key's value while a job is not terminal, before its shard suffix
ENDING = "ending"  # ... once it ended, until what follows its end is settled (endings.py)
# Every active job writes the index twice per counted file (its sort key, updatedAt, moves:
# one delete, one put), and a GSI partition takes 1,000 write units/s; a throttled GSI write
# throttles the table write that feeds it ("Best practices for designing and using partition
# keys effectively"; "Provisioned throughput considerations for global secondary indexes").
# Under one value the service stops near 500 files/s. Spread over 32 values chosen from the
# job id: the default profile's peak, ~580 files/s x 2 index writes / 32 shards ~ 36 writes/s
# per shard; 10x that profile ~ 360/s per shard, still under 1,000 (scripts/capacity.py).
ACTIVE_SHARDS = 32
# Attributes of the bundle claim (jobs.JobStore.claim_bundle), dropped when the job ends.
CLAIM_ATTRIBUTES = ("bundleClaim", "bundleLeaseUntil")


def shard_of(job_id: str) -> int:
    """The job's index shard: stable across processes and deploys (not Python's salted hash())."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big") % ACTIVE_SHARDS


def active_value(job_id: str) -> str:
    """The job's `active` while it is not terminal: `jobs#07`."""
    return f"{ACTIVE}#{shard_of(job_id):02d}"


def ending_value(job_id: str) -> str:
    """The job's `active` once it ended, until settled: `ending#07`."""
    return f"{ENDING}#{shard_of(job_id):02d}"


def partitions(base: str) -> list[str]:
    """Every index partition a reader of `base` (ACTIVE or ENDING) must query: each shard, then the
    unsharded value that jobs written before the shards still hold until a write moves them."""
    return [f"{base}#{shard:02d}" for shard in range(ACTIVE_SHARDS)] + [base]


def job_key(job_id: str) -> dict:
    return {"pk": f"JOB#{job_id}", "sk": JOB_SK}


def file_key(job_id: str, file_id: int) -> dict:
    return {"pk": f"JOB#{job_id}", "sk": f"FILE#{file_id}"}


def wait_key(job_id: str, file_id: int) -> dict:
    return {"pk": f"JOB#{job_id}", "sk": f"{WAIT_PREFIX}{file_id}"}


WAIT_PREFIX = "WAIT#"


def idempotency_key(key: str, owner: str | None = None) -> dict:
    """Scoped to the owner: two API keys sending the same Idempotency-Key get two jobs.

    Without an owner the digest is the one unauthenticated clients always had."""
    scoped = key if owner is None else f"{owner}\n{key}"
    digest = hashlib.sha256(scoped.encode()).hexdigest()
    return {"pk": f"IDEMPOTENCY#{digest}", "sk": IDEMPOTENCY_SK}


def as_int(value: Any, default: int = 0) -> int:
    """DynamoDB numbers arrive as Decimal; absent ones as None."""
    return int(value) if value is not None else default


def _optional_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _moment(value: str) -> datetime:
    """A timestamp every job item has (createdAt, updatedAt, expiresAt)."""
    moment = parse_iso(value)
    if moment is None:
        raise ValueError("a job item lacks a required timestamp")
    return moment


def new_job_item(
    job_id: str, request: InitiateRequest, now: datetime, expires: datetime, owner: str | None = None
) -> dict:
    """A queued job, listed in the sparse active-jobs index until it ends (and by owner, when it has one)."""
    item = {
        **job_key(job_id),
        "jobId": job_id,
        "status": JobStatus.QUEUED.value,
        "fileIdsPacked": pack_file_ids(request.file_ids),
        "totalFiles": len(request.file_ids),
        "completedFiles": 0,
        "availableFiles": 0,
        "createdAt": iso(now),
        "updatedAt": iso(now),
        "expiresAt": iso(expires),
        "ttl": int(expires.timestamp()),
        "active": active_value(job_id),
        "requestHash": request.fingerprint,
        **({"callbackUrl": request.callback_url} if request.callback_url else {}),
    }
    if owner is not None:
        item["owner"] = owner
    return item


def idempotency_item(key: str, owner: str | None, job_id: str, request_hash: str, expires: datetime) -> dict:
    return {
        **idempotency_key(key, owner),
        "jobId": job_id,
        "requestHash": request_hash,
        "ttl": int(expires.timestamp()),
    }


def idempotency_put(
    table_name: str, request: InitiateRequest, owner: str | None, job_id: str, now: datetime, expires: datetime
) -> dict[str, Any]:
    """The transaction item claiming an Idempotency-Key for a new job; an expired key (TTL not yet swept) may be reused."""
    item = idempotency_item(request.idempotency_key or "", owner, job_id, request.fingerprint, expires)
    return {
        "Put": {
            "TableName": table_name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {":now": int(now.timestamp())},
        }
    }


_PACKED_V1 = b"\x01"


def pack_file_ids(file_ids: Iterable[int]) -> bytes:
    """The ordered ids as zlib-compressed int32 deltas, behind a format byte.

    A list of 1,000 numbers is ~5-7 KB of the item, read again by every status
    poll and every file's worker (2 RCUs per consistent read past 4 KB); packed,
    consecutive ids take a few dozen bytes and scattered ones at most ~4 KB."""
    ids = list(file_ids)
    deltas = [current - previous for previous, current in zip([0, *ids[:-1]], ids, strict=True)]
    return _PACKED_V1 + zlib.compress(struct.pack(f">{len(deltas)}i", *deltas), 9)


def unpack_file_ids(packed: bytes) -> tuple[int, ...]:
    if packed[:1] != _PACKED_V1:
        raise ValueError("unknown packing of a job's file ids")
    raw = zlib.decompress(packed[1:])
    ids, total = [], 0
    for (delta,) in struct.iter_unpack(">i", raw):
        total += delta
        ids.append(total)
    return tuple(ids)


def _file_ids(item: dict) -> tuple[int, ...]:
    """Jobs written before the packing (a plain `fileIds` list) still read."""
    if "fileIdsPacked" in item:
        return unpack_file_ids(bytes(item["fileIdsPacked"]))  # boto3 reads a Binary
    return tuple(int(value) for value in item["fileIds"])


def job_from_item(item: dict) -> Job:
    return Job(
        job_id=item["jobId"],
        status=JobStatus(item["status"]),
        file_ids=_file_ids(item),
        created_at=_moment(item["createdAt"]),
        updated_at=_moment(item["updatedAt"]),
        expires_at=_moment(item["expiresAt"]),
        completed_files=as_int(item.get("completedFiles")),
        available_files=as_int(item.get("availableFiles")),
        completed_at=parse_iso(item.get("completedAt")),
        result_key=item.get("resultKey"),
        size=_optional_int(item.get("size")),
        sha256=item.get("sha256"),
        error=item.get("error"),
        resumes=as_int(item.get("resumes")),
        request_hash=item.get("requestHash"),
        callback_url=item.get("callbackUrl"),
        callback=callback_from_item(item),
        owner=item.get("owner"),
        window=_optional_int(item.get("window")),
        bundles=tuple(bundle_from_item(entry) for entry in item.get("bundles", [])),
    )


def bundle_item(bundle: BuiltBundle) -> dict:
    """One entry of a completed job's `bundles` list: ~150 bytes plus its packed file ids."""
    return {
        "key": bundle.key,
        "size": bundle.size,
        "sha256": bundle.sha256,
        "fileIdsPacked": pack_file_ids(bundle.file_ids),
    }


def bundle_from_item(entry: dict) -> BuiltBundle:
    return BuiltBundle(entry["key"], int(entry["size"]), entry["sha256"], _file_ids(entry))


def callback_from_item(item: dict) -> CallbackState | None:
    """The webhook state chalicelib.jobs.callbacks keeps on the job item; None before the job ends."""
    if "callbackStatus" not in item:
        return None
    return CallbackState(
        status=CallbackStatus(item["callbackStatus"]),
        attempts=as_int(item.get("callbackAttempts")),
        last_error=item.get("callbackLastError"),
        delivered_at=parse_iso(item.get("callbackDeliveredAt")),
    )


def file_item(job_id: str, result: FileResult, now: datetime, expires: datetime) -> dict:
    item = {
        **file_key(job_id, result.file_id),
        "fileId": result.file_id,
        "status": result.status.value,
        "finishedAt": iso(now),
        "ttl": int(expires.timestamp()),
    }
    if result.size is not None:
        item["size"] = result.size
    return item


def file_result_from_item(item: dict) -> FileResult:
    return FileResult(int(item["fileId"]), FileStatus(item["status"]), _optional_int(item.get("size")))


def retention(until: datetime) -> dict[str, Any]:
    """The attributes a terminal transition sets: a job is kept JOB_TTL_SECONDS after it ends."""
    return {"ttl": int(until.timestamp()), "expiresAt": iso(until)}


def transition_update(
    job_id: str,
    target: JobStatus,
    now: datetime,
    sets: dict[str, Any] | None = None,
    removes: Iterable[str] = (),
    extra_condition: str = "",
    extra_values: dict[str, Any] | None = None,
    before_ttl: bool = True,
) -> dict[str, Any]:
    """UpdateItem arguments moving a job to `target`, only from the states models.ALLOWED_FROM
    allows and (unless `before_ttl` is off: the sweeper expiring a job) only before its TTL;
    a terminal target moves to the job's shard of the index's `ending` partition, which settling it
    leaves; any other target puts the job in its own `active` shard (a job from before the shards
    moves there on this write, at no extra index write: updatedAt, the sort key, moves anyway)."""
    sources = sorted(status.value for status in ALLOWED_FROM[target])
    values: dict[str, Any] = {
        ":target": target.value,
        ":now": iso(now),
        **{f":from{i}": status for i, status in enumerate(sources)},
        **(extra_values or {}),
    }
    names = {"#status": "status"}
    assignments = ["#status = :target", "updatedAt = :now"]
    for index, (name, value) in enumerate((sets or {}).items()):
        names[f"#s{index}"] = name
        values[f":s{index}"] = value
        assignments.append(f"#s{index} = :s{index}")
    if target.terminal:
        assignments.append("active = :ending")
        values[":ending"] = ending_value(job_id)
    else:
        assignments.append("active = :active")
        values[":active"] = active_value(job_id)
    remove = list(removes)
    expression = "SET " + ", ".join(assignments)
    if remove:
        expression += " REMOVE " + ", ".join(remove)
    condition = f"#status IN ({', '.join(f':from{i}' for i in range(len(sources)))})"
    if before_ttl:
        names["#ttl"] = "ttl"
        values[":nowEpoch"] = int(now.timestamp())
        condition += " AND #ttl >= :nowEpoch"
    if extra_condition:
        condition += f" AND ({extra_condition})"
    return {
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
