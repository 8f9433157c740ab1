"""The JSON documents the API returns, each shaped here and nowhere else.

DESIGN.md and chalicelib/openapi.json describe them; tests/contract holds the
real responses to that description. Callers decide (is the job done? is the
file there?) and hand over values; this module only says how each answer
looks, the path clients poll, and how a bundle or a source file is signed.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.storage import Storage
from chalicelib.config import Settings
from chalicelib.models import (
    BuiltBundle,
    CallbackState,
    CallbackStatus,
    FileResult,
    FileStatus,
    Job,
    JobStatus,
    iso,
    source_key,
)

READY_MESSAGE = "Download ready"


def status_path(job_id: str) -> str:
    """Where a job's status is polled: the 202's `statusUrl` and its Location header."""
    return f"/v1/download/status/{job_id}"


def bundle_filename(job_id: str, volume: int = 1, count: int = 1) -> str:
    """delineate-<jobId>.zip, or delineate-<jobId>-<n>-of-<count>.zip for a volume of several."""
    return f"delineate-{job_id}.zip" if count <= 1 else f"delineate-{job_id}-{volume}-of-{count}.zip"


def sign_bundle(storage: Storage, settings: Settings, job_id: str, key: str, volume: int = 1, count: int = 1) -> str:
    """A job's bundle (or volume) URL: saved by bundle_filename's name, valid for PRESIGN_EXPIRY_SECONDS."""
    return storage.presign(key, settings.presign_expiry_seconds, filename=bundle_filename(job_id, volume, count))


def sign_bundles(storage: Storage, settings: Settings, job: Job) -> list[str]:
    """One URL per bundle of a completed job, in volume order ([] before it completes)."""
    if job.status is not JobStatus.COMPLETED:
        return []
    bundles = job.built_bundles
    return [
        sign_bundle(storage, settings, job.job_id, bundle.key, number, len(bundles))
        for number, bundle in enumerate(bundles, start=1)
    ]


def sign_source(storage: Storage, settings: Settings, file_id: int) -> str:
    """One source file's URL, valid as long as a bundle's."""
    return storage.presign(source_key(file_id), settings.presign_expiry_seconds)


def status_document(
    job: Job, download_url: str | None, files: list[dict] | None = None, bundle_urls: list[str] | None = None
) -> dict:
    """The JSON clients poll; `download_url` is the (possibly re-minted) URL to show, the first
    of `bundle_urls` when the job has several bundles (a caller passing only `download_url`
    lists the other bundles without a URL)."""
    document: dict[str, Any] = {
        "jobId": job.job_id,
        "status": job.status.value,
        "progress": job.progress,
        "totalFiles": job.total_files,
        "completedFiles": job.completed_files,
        "availableFiles": job.available_files,
        "downloadUrl": download_url,
        "size": job.size if download_url else None,
        "sha256": job.sha256 if download_url else None,
        "bundleCount": len(completed_bundles(job)),
        "bundles": bundles_document(job, bundle_urls or ([download_url] if download_url else [])),
        "error": job.error,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "completedAt": iso(job.completed_at),
        "expiresAt": iso(job.expires_at),
        "callback": callback_document(job),
    }
    if files is not None:
        document["files"] = files
    return document


def completed_bundles(job: Job) -> tuple[BuiltBundle, ...]:
    return job.built_bundles if job.status is JobStatus.COMPLETED else ()


def bundles_document(job: Job, urls: list[str]) -> list[dict]:
    """`bundles`: each zip of a completed job with its size, SHA-256, the files it holds and its URL,
    when the caller signed one (the status document signs them all; a webhook event, none, and
    names no URL at all)."""
    bundles = completed_bundles(job)
    padded = [*urls, *[None] * (len(bundles) - len(urls))]
    return [
        {
            **({"downloadUrl": url} if url else {}),
            "size": bundle.size,
            "sha256": bundle.sha256,
            "fileIds": list(bundle.file_ids),
        }
        for bundle, url in zip(bundles, padded, strict=False)
    ]


def callback_document(job: Job) -> dict | None:
    """The job's webhook: null when none was asked for, pending until the job ends and one attempt settles it."""
    if job.callback_url is None:
        return None
    state = job.callback or CallbackState(CallbackStatus.PENDING)
    return {
        "url": job.callback_url,
        "status": state.status.value,
        "attempts": state.attempts,
        "lastError": state.last_error,
        "deliveredAt": iso(state.delivered_at),
    }


def job_list_document(jobs: list[dict], next_cursor: str | None) -> dict:
    """GET /v1/download/jobs: status documents, newest first, and the cursor of the next page."""
    return {"jobs": jobs, "nextCursor": next_cursor}


def file_document(file_id: int, result: FileResult | None, download_url: str | None) -> dict:
    """One entry of `?include=files`: a file with no result yet is pending."""
    return {
        "fileId": file_id,
        "status": (result.status if result else FileStatus.PENDING).value,
        "size": result.size if result else None,
        "downloadUrl": download_url,
    }


def accepted_document(job: Job, estimated_seconds: int) -> dict:
    """The 202 (or idempotent 200) answer to initiate."""
    return {
        "jobId": job.job_id,
        "status": job.status.value,
        "totalFileIds": job.total_files,
        "estimatedTimeSeconds": estimated_seconds,
        "statusUrl": status_path(job.job_id),
    }


def pending_start_document(job: Job) -> dict:
    """/start's 202 when the file is not ready within the wait: the job to poll instead."""
    return {"jobId": job.job_id, "status": job.status.value, "statusUrl": status_path(job.job_id)}


def check_document(file_id: int, size: int | None) -> dict:
    """/check: whether the source object exists, and its key and size when it does."""
    available = size is not None
    return {
        "file_id": file_id,
        "available": available,
        "s3Key": source_key(file_id) if available else None,
        "size": size,
    }


def start_document(job: Job, file_id: int, download_url: str | None, size: int | None, elapsed_ms: int) -> dict:
    """/start's 200, the original blocking shape: completed with a URL, or failed with the reason."""
    ready = download_url is not None
    return {
        "file_id": file_id,
        "status": (JobStatus.COMPLETED if ready else JobStatus.FAILED).value,
        "downloadUrl": download_url,
        "size": size,
        "processingTimeMs": elapsed_ms,
        "message": READY_MESSAGE if ready else job.error or f"File {file_id} is not available",
        "jobId": job.job_id,
    }
