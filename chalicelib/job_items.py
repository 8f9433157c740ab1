"""How jobs look in DynamoDB: keys, items to and from the models, a transition's update.

One table, two item kinds under a job's partition:
  pk=JOB#<id>  sk=JOB          the job: status, counters, result, `ttl`
  pk=JOB#<id>  sk=FILE#<fid>   one per finished file (absent = pending)
and pk=IDEMPOTENCY#<sha256(key)> sk=IDEMPOTENCY for Idempotency-Key reuse.
Pure functions: jobs.JobStore does the reads and the conditional writes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Iterable

from chalicelib.models import ALLOWED_FROM, FileResult, FileStatus, InitiateRequest, Job, JobStatus, iso, parse_iso

JOB_SK = "JOB"
IDEMPOTENCY_SK = "IDEMPOTENCY"
ACTIVE_INDEX = "active-jobs"
ACTIVE = "jobs"  # value of the sparse GSI key while a job is not terminal
# Attributes of the bundle claim (jobs.JobStore.claim_bundle), dropped when the job ends.
CLAIM_ATTRIBUTES = ("bundleClaim", "bundleLeaseUntil")


def job_key(job_id: str) -> dict:
    return {"pk": f"JOB#{job_id}", "sk": JOB_SK}


def file_key(job_id: str, file_id: int) -> dict:
    return {"pk": f"JOB#{job_id}", "sk": f"FILE#{file_id}"}


def idempotency_key(key: str) -> dict:
    digest = hashlib.sha256(key.encode()).hexdigest()
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


def new_job_item(job_id: str, request: InitiateRequest, now: datetime, expires: datetime) -> dict:
    """A queued job, listed in the sparse active-jobs index until it ends."""
    return {
        **job_key(job_id),
        "jobId": job_id,
        "status": JobStatus.QUEUED.value,
        "fileIds": list(request.file_ids),
        "totalFiles": len(request.file_ids),
        "completedFiles": 0,
        "availableFiles": 0,
        "createdAt": iso(now),
        "updatedAt": iso(now),
        "expiresAt": iso(expires),
        "ttl": int(expires.timestamp()),
        "active": ACTIVE,
        "requestHash": request.fingerprint,
    }


def idempotency_item(key: str, job_id: str, request_hash: str, expires: datetime) -> dict:
    return {**idempotency_key(key), "jobId": job_id, "requestHash": request_hash, "ttl": int(expires.timestamp())}


def job_from_item(item: dict) -> Job:
    return Job(
        job_id=item["jobId"],
        status=JobStatus(item["status"]),
        file_ids=tuple(int(value) for value in item["fileIds"]),
        created_at=_moment(item["createdAt"]),
        updated_at=_moment(item["updatedAt"]),
        expires_at=_moment(item["expiresAt"]),
        completed_files=as_int(item.get("completedFiles")),
        available_files=as_int(item.get("availableFiles")),
        completed_at=parse_iso(item.get("completedAt")),
        result_key=item.get("resultKey"),
        size=_optional_int(item.get("size")),
        download_url=item.get("downloadUrl"),
        download_url_expires_at=parse_iso(item.get("downloadUrlExpiresAt")),
        error=item.get("error"),
        resumes=as_int(item.get("resumes")),
        request_hash=item.get("requestHash"),
        window=_optional_int(item.get("window")),
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


def transition_update(
    target: JobStatus,
    now: datetime,
    sets: dict[str, Any] | None = None,
    removes: Iterable[str] = (),
    extra_condition: str = "",
) -> dict[str, Any]:
    """UpdateItem arguments moving a job to `target`, only from the states models.ALLOWED_FROM
    allows and only before its TTL; a terminal target also leaves the active-jobs index."""
    sources = sorted(status.value for status in ALLOWED_FROM[target])
    values: dict[str, Any] = {
        ":target": target.value,
        ":now": iso(now),
        ":nowEpoch": int(now.timestamp()),
        **{f":from{i}": status for i, status in enumerate(sources)},
    }
    names = {"#status": "status", "#ttl": "ttl"}
    assignments = ["#status = :target", "updatedAt = :now"]
    for index, (name, value) in enumerate((sets or {}).items()):
        names[f"#s{index}"] = name
        values[f":s{index}"] = value
        assignments.append(f"#s{index} = :s{index}")
    remove = list(removes) + (["active"] if target.terminal else [])
    expression = "SET " + ", ".join(assignments)
    if remove:
        expression += " REMOVE " + ", ".join(remove)
    condition = f"#status IN ({', '.join(f':from{i}' for i in range(len(sources)))}) AND #ttl >= :nowEpoch"
    if extra_condition:
        condition += f" AND ({extra_condition})"
    return {
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
