"""Volume items: one per zip of a job split by BUNDLE_MAX_BYTES, each built exactly once.

Under the job's partition, next to its file items:
  pk=JOB#<id>  sk=VOLUME#0001   volume 1: its fileIds and sizes, then its claim, then its result
and on the job item `volumeCount` (written with the plan) and `volumesBuilt` (counted as each
volume's result is recorded). Each volume message claims its volume the way the single bundle
claims the job (a lease naming the message), so a crashed build is retried alone; recording a
result and counting it are one transaction, conditioned on the volume having none yet, so the
count reaches volumeCount exactly once, and completing the job is conditioned on it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Callable, Sequence

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code, query_items
from chalicelib.jobs.conflicts import ConflictRetryingTable
from chalicelib.jobs.items import as_int, job_key
from chalicelib.jobs.owners import refused_at
from chalicelib.models import BuiltBundle, Job, JobStatus, PlannedVolume, iso, utc_now

VOLUME_PREFIX = "VOLUME#"


def volume_key(job_id: str, number: int) -> dict:
    """Zero-padded, so a query returns volumes in order (a job has at most 1,000 files, so 1,000 volumes)."""
    return {"pk": f"JOB#{job_id}", "sk": f"{VOLUME_PREFIX}{number:05d}"}


class VolumeClaim(enum.Enum):
    CLAIMED = "claimed"
    HELD_ELSEWHERE = "held_elsewhere"  # another message's lease has not lapsed
    BUILT = "built"  # its result is recorded already
    UNKNOWN = "unknown"  # no such volume in the job's plan


class VolumeRecord(enum.Enum):
    RECORDED = "recorded"  # this build is the volume's result, and counted
    ALREADY_BUILT = "already_built"  # another build of it was recorded first
    JOB_CLOSED = "job_closed"  # the job is no longer processing


class VolumeStore:
    def __init__(self, table: Any, ttl_seconds: int, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table if isinstance(table, ConflictRetryingTable) else ConflictRetryingTable(table)
        self._client = self._table.meta.client
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    def record_plan(self, job: Job, volumes: Sequence[PlannedVolume]) -> bool:
        """Writes the plan: volumeCount on the job (only while it is processing with every file
        counted, and only the same count again), then one item per volume, kept if already there.

        False when the job is closed. Each volume item outlives the job: the job ends before
        its first expiry, and is then kept JOB_TTL_SECONDS."""
        try:
            self._table.update_item(
                Key=job_key(job.job_id),
                UpdateExpression="SET volumeCount = :count",
                ConditionExpression=(
                    "#status = :processing AND completedFiles >= totalFiles AND "
                    "(attribute_not_exists(volumeCount) OR volumeCount = :count)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":count": len(volumes), ":processing": JobStatus.PROCESSING.value},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        ttl = int(job.expires_at.timestamp()) + self._ttl_seconds
        for volume in volumes:
            item = {
                **volume_key(job.job_id, volume.number),
                "number": volume.number,
                "fileIds": list(volume.file_ids),
                "sizes": list(volume.sizes),
                "ttl": ttl,
            }
            try:
                self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(sk)")
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        return True

    def members(self, job_id: str, number: int) -> list[tuple[int, int]] | None:
        """(file id, size) of a planned volume, in order; None if the plan has no such volume."""
        item = self._table.get_item(Key=volume_key(job_id, number), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return [(int(file_id), int(size)) for file_id, size in zip(item["fileIds"], item["sizes"], strict=True)]

    def claim(self, job_id: str, number: int, claimant: str, lease_seconds: int) -> VolumeClaim:
        """Lets one message build the volume: as JobStore.claim_bundle, per volume."""
        now = int(self._clock().timestamp())
        try:
            self._table.update_item(
                Key=volume_key(job_id, number),
                UpdateExpression="SET claim = :claimant, leaseUntil = :until",
                ConditionExpression=(
                    "attribute_exists(sk) AND attribute_not_exists(resultKey) AND "
                    "(attribute_not_exists(claim) OR claim = :claimant OR leaseUntil < :now)"
                ),
                ExpressionAttributeValues={":claimant": claimant, ":now": now, ":until": now + lease_seconds},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            item = self._table.get_item(Key=volume_key(job_id, number), ConsistentRead=True).get("Item")
            if item is None:
                return VolumeClaim.UNKNOWN
            return VolumeClaim.BUILT if "resultKey" in item else VolumeClaim.HELD_ELSEWHERE
        return VolumeClaim.CLAIMED

    def record_built(self, job_id: str, number: int, key: str, size: int, sha256: str) -> VolumeRecord:
        """The volume's result and the job's count of built volumes, in one transaction."""
        now = iso(self._clock())
        record = {
            "Update": {
                "TableName": self._table.name,
                "Key": volume_key(job_id, number),
                "UpdateExpression": "SET resultKey = :key, #size = :size, sha256 = :sha REMOVE claim, leaseUntil",
                "ConditionExpression": "attribute_exists(sk) AND attribute_not_exists(resultKey)",
                "ExpressionAttributeNames": {"#size": "size"},
                "ExpressionAttributeValues": {":key": key, ":size": size, ":sha": sha256},
            }
        }
        count = {
            "Update": {
                "TableName": self._table.name,
                "Key": job_key(job_id),
                "UpdateExpression": "ADD volumesBuilt :one SET updatedAt = :now",
                "ConditionExpression": "#status = :processing",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":one": 1, ":now": now, ":processing": JobStatus.PROCESSING.value},
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[record, count])
        except self._client.exceptions.TransactionCanceledException as exc:
            if refused_at(exc, 0):
                return VolumeRecord.ALREADY_BUILT
            if refused_at(exc, 1):
                return VolumeRecord.JOB_CLOSED
            raise
        return VolumeRecord.RECORDED

    def built(self, job_id: str) -> tuple[BuiltBundle, ...] | None:
        """Every volume's result, in order, once the job counts them all built; None before."""
        item = self._table.get_item(
            Key=job_key(job_id), ConsistentRead=True, ProjectionExpression="volumeCount, volumesBuilt"
        ).get("Item")
        if item is None or "volumeCount" not in item:
            return None
        if as_int(item.get("volumesBuilt")) < as_int(item["volumeCount"]):
            return None
        query = {
            "KeyConditionExpression": Key("pk").eq(f"JOB#{job_id}") & Key("sk").begins_with(VOLUME_PREFIX),
            "ConsistentRead": True,
        }
        return tuple(
            BuiltBundle(
                entry["resultKey"],
                int(entry["size"]),
                entry["sha256"],
                tuple(int(file_id) for file_id in entry["fileIds"]),
            )
            for entry in query_items(self._table, query)
        )
