"""Job and file states, their allowed transitions, and the values the domain passes around."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# Status moves only forward. Each transition is enforced by a DynamoDB
# condition built from this table (jobs/items.py), never by read-then-write.
ALLOWED_FROM: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PROCESSING: frozenset({JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset({JobStatus.PROCESSING}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.PROCESSING}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.PROCESSING}),
}


class FileStatus(str, enum.Enum):
    PENDING = "pending"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class FileResult:
    file_id: int
    status: FileStatus
    size: int | None = None

    @property
    def s3_key(self) -> str:
        return source_key(self.file_id)


def source_key(file_id: int) -> str:
    return f"downloads/{file_id}.zip"


def result_prefix(job_id: str) -> str:
    return f"results/{job_id}/"


def result_key(job_id: str, build_id: str) -> str:
    """Each build of a bundle writes its own object, so a key once handed out is never overwritten."""
    return f"{result_prefix(job_id)}{build_id}.zip"


@dataclass(frozen=True)
class BuiltBundle:
    """One zip of a completed job (a "volume" when BUNDLE_MAX_BYTES split the job into several):
    its S3 key, size, SHA-256 and the files it holds, in the job's order."""

    key: str
    size: int
    sha256: str
    file_ids: tuple[int, ...]


@dataclass(frozen=True)
class PlannedVolume:
    """Volume `number` (from 1) of a job's plan: its files in the job's order, with their sizes."""

    number: int
    file_ids: tuple[int, ...]
    sizes: tuple[int, ...]


class CallbackStatus(str, enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class CallbackState:
    """Where a job's webhook stands: attempts claimed so far, the last failure, when it was delivered."""

    status: CallbackStatus
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class InitiateRequest:
    """What a client asked for: produced by validation.parse_initiate, stored by jobs.JobStore."""

    file_ids: tuple[int, ...]
    idempotency_key: str | None = None
    callback_url: str | None = None

    @property
    def fingerprint(self) -> str:
        """Identifies the request body for Idempotency-Key reuse checks.

        callbackUrl joins the body only when given, so fingerprints of requests
        without one (and keys stored before webhooks existed) are unchanged."""
        body: dict[str, Any] = {"file_ids": list(self.file_ids)}
        if self.callback_url is not None:
            body["callbackUrl"] = self.callback_url
        canonical = json.dumps(body, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Job:
    job_id: str
    status: JobStatus
    file_ids: tuple[int, ...]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    completed_files: int = 0
    available_files: int = 0
    completed_at: datetime | None = None
    result_key: str | None = None
    size: int | None = None
    sha256: str | None = None  # of the bundle, hashed while it was streamed
    error: str | None = None
    resumes: int = 0
    request_hash: str | None = None
    owner: str | None = None  # the id of the API key that created it; None without authentication
    window: int | None = None  # file messages it may have out at once, fixed by its fan-out (jobs/scheduling.py)
    extra: Mapping[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    callback: "CallbackState | None" = None  # None until the job ends (and always without a callbackUrl)
    bundles: tuple[BuiltBundle, ...] = ()  # set when it completes; result_key/size/sha256 are the first's

    @property
    def total_files(self) -> int:
        return len(self.file_ids)

    @property
    def progress(self) -> int:
        if self.status is JobStatus.COMPLETED:
            return 100
        return math.floor(self.completed_files * 100 / self.total_files) if self.total_files else 0

    @property
    def all_files_done(self) -> bool:
        return self.completed_files >= self.total_files

    @property
    def built_bundles(self) -> tuple[BuiltBundle, ...]:
        """Its zips, in volume order. A job completed before volumes existed has only its
        result_key: one bundle, listed with every requested file (unavailable ones included)."""
        if self.bundles or self.result_key is None:
            return self.bundles
        return (BuiltBundle(self.result_key, self.size or 0, self.sha256 or "", self.file_ids),)
