"""The API's documents: each shape as DESIGN.md gives it, the status path and the signing rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

from chalicelib.config import Settings
from chalicelib.jobs import documents
from chalicelib.jobs.documents import status_document
from chalicelib.models import CallbackState, CallbackStatus, FileResult, FileStatus, Job, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
JOB_ID = "3f0c2f7e-1111-4111-8111-111111111111"


def job(**overrides) -> Job:
    values = dict(
        job_id=JOB_ID,
        status=JobStatus.PROCESSING,
        file_ids=(70000, 70003, 70007),
        created_at=T0,
        updated_at=T0 + timedelta(seconds=5),
        expires_at=T0 + timedelta(days=1),
    )
    values.update(overrides)
    return Job(**values)


class SigningStorage:
    """Records what is signed instead of calling S3."""

    def presign(self, key: str, expires_in: int, filename: str | None = None) -> str:
        query = f"expires={expires_in}" + (f"&filename={filename}" if filename else "")
        return f"https://signed.test/{key}?{query}"


def test_status_document_has_the_contract_fields():
    document = status_document(job(completed_files=2, available_files=1), None)

    assert document == {
        "jobId": JOB_ID,
        "status": "processing",
        "progress": 66,
        "totalFiles": 3,
        "completedFiles": 2,
        "availableFiles": 1,
        "downloadUrl": None,
        "size": None,
        "sha256": None,
        "bundleCount": 0,
        "bundles": [],
        "error": None,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:05Z",
        "completedAt": None,
        "expiresAt": "2026-01-02T00:00:00Z",
        "callback": None,
    }


def test_status_document_shows_size_and_checksum_only_with_a_download_url():
    done = job(
        status=JobStatus.COMPLETED,
        completed_files=3,
        available_files=2,
        size=4096,
        sha256="ab" * 32,
        completed_at=T0 + timedelta(seconds=9),
    )

    with_url = status_document(done, "https://example.test/bundle.zip")
    without_url = status_document(done, None)

    assert (with_url["downloadUrl"], with_url["size"], with_url["completedAt"]) == (
        "https://example.test/bundle.zip",
        4096,
        "2026-01-01T00:00:09Z",
    )
    assert with_url["sha256"] == "ab" * 32
    assert (without_url["downloadUrl"], without_url["size"], without_url["sha256"]) == (None, None, None)


def test_status_document_lists_files_only_when_asked():
    files = [{"fileId": 70000, "status": "pending", "size": None, "downloadUrl": None}]

    assert "files" not in status_document(job(), None)
    assert status_document(job(), None, files)["files"] == files


def test_the_status_path_is_where_the_accepted_document_points():
    accepted = documents.accepted_document(job(status=JobStatus.QUEUED), estimated_seconds=4)

    assert accepted == {
        "jobId": JOB_ID,
        "status": "queued",
        "totalFileIds": 3,
        "estimatedTimeSeconds": 4,
        "statusUrl": f"/v1/download/status/{JOB_ID}",
    }
    assert documents.pending_start_document(job())["statusUrl"] == documents.status_path(JOB_ID)


def test_a_bundle_is_signed_with_its_download_name_and_the_configured_expiry():
    settings = Settings.from_env({"PRESIGN_EXPIRY_SECONDS": "900"})

    url = documents.sign_bundle(SigningStorage(), settings, JOB_ID, f"results/{JOB_ID}/b1.zip")

    query = parse_qs(urlparse(url).query)
    assert query == {"expires": ["900"], "filename": [f"delineate-{JOB_ID}.zip"]}


def test_a_source_file_is_signed_by_its_key_without_a_download_name():
    url = documents.sign_source(
        SigningStorage(),
        Settings.from_env({"PRESIGN_EXPIRY_SECONDS": "60"}),
        70000,
    )

    assert url == "https://signed.test/downloads/70000.zip?expires=60"


def test_a_file_without_a_result_is_pending():
    assert documents.file_document(70000, None, None) == {
        "fileId": 70000,
        "status": "pending",
        "size": None,
        "downloadUrl": None,
    }
    available = documents.file_document(70003, FileResult(70003, FileStatus.AVAILABLE, 10), "https://u")
    assert (available["status"], available["size"], available["downloadUrl"]) == ("available", 10, "https://u")


def test_check_names_the_key_only_when_the_file_exists():
    assert documents.check_document(70000, 2048) == {
        "file_id": 70000,
        "available": True,
        "s3Key": "downloads/70000.zip",
        "size": 2048,
    }
    assert documents.check_document(70001, None)["s3Key"] is None


def test_start_is_completed_with_a_url_and_failed_with_the_reason_without_one():
    failed = job(status=JobStatus.COMPLETED, error=None)

    ready = documents.start_document(failed, 70000, "https://u", 2048, elapsed_ms=12)
    missing = documents.start_document(failed, 70000, None, None, elapsed_ms=12)

    assert (ready["status"], ready["message"], ready["size"]) == ("completed", "Download ready", 2048)
    assert (missing["status"], missing["message"]) == ("failed", "File 70000 is not available")


def test_a_job_with_a_callback_url_shows_its_webhook_pending_until_settled():
    waiting = status_document(job(callback_url="https://example.com/h"), None)["callback"]
    delivered = status_document(
        job(
            callback_url="https://example.com/h",
            callback=CallbackState(CallbackStatus.DELIVERED, 2, "HTTP 500", T0 + timedelta(minutes=1)),
        ),
        None,
    )["callback"]

    assert waiting == {
        "url": "https://example.com/h",
        "status": "pending",
        "attempts": 0,
        "lastError": None,
        "deliveredAt": None,
    }
    assert delivered == {
        "url": "https://example.com/h",
        "status": "delivered",
        "attempts": 2,
        "lastError": "HTTP 500",
        "deliveredAt": "2026-01-01T00:01:00Z",
    }
