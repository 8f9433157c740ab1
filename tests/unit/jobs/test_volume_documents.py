"""The status document's `bundles`: one entry per zip, the top-level fields those of the first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chalicelib.config import Settings
from chalicelib.jobs import documents
from chalicelib.models import BuiltBundle, Job, JobStatus

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
JOB_ID = "3f0c2f7e-1111-4111-8111-111111111111"
FIRST = BuiltBundle("results/j/volume-1.zip", 900, "a" * 64, (70000, 70014))
SECOND = BuiltBundle("results/j/volume-2.zip", 700, "b" * 64, (70007,))


def completed(*bundles: BuiltBundle, result_key: str | None = "results/j/volume-1.zip") -> Job:
    first = bundles[0] if bundles else None
    return Job(
        job_id=JOB_ID,
        status=JobStatus.COMPLETED,
        file_ids=(70000, 70007, 70014),
        created_at=T0,
        updated_at=T0,
        expires_at=T0 + timedelta(days=1),
        completed_files=3,
        available_files=3,
        result_key=result_key,
        size=first.size if first else None,
        sha256=first.sha256 if first else None,
        bundles=bundles,
    )


class SigningStorage:
    def presign(self, key: str, expires_in: int, filename: str | None = None) -> str:
        return f"https://signed.test/{key}?filename={filename}"


def test_several_bundles_are_listed_in_order_and_the_top_level_fields_describe_the_first():
    job = completed(FIRST, SECOND)
    urls = documents.sign_bundles(SigningStorage(), Settings.from_env({}), job)

    document = documents.status_document(job, urls[0], None, urls)

    assert document["bundleCount"] == 2
    assert document["bundles"] == [
        {"downloadUrl": urls[0], "size": 900, "sha256": "a" * 64, "fileIds": [70000, 70014]},
        {"downloadUrl": urls[1], "size": 700, "sha256": "b" * 64, "fileIds": [70007]},
    ]
    assert (document["downloadUrl"], document["size"], document["sha256"]) == (urls[0], 900, "a" * 64)
    assert urls[1].endswith(f"filename=delineate-{JOB_ID}-2-of-2.zip")


def test_one_bundle_keeps_its_plain_name_and_is_the_only_entry():
    job = completed(FIRST)
    [url] = documents.sign_bundles(SigningStorage(), Settings.from_env({}), job)

    document = documents.status_document(job, url, None, [url])

    assert url.endswith(f"filename=delineate-{JOB_ID}.zip")
    assert (document["bundleCount"], [b["fileIds"] for b in document["bundles"]]) == (1, [[70000, 70014]])


def test_before_completion_there_are_no_bundles():
    job = Job(JOB_ID, JobStatus.PROCESSING, (70000,), T0, T0, T0 + timedelta(days=1))

    document = documents.status_document(job, None)

    assert (document["bundleCount"], document["bundles"]) == (0, [])


def test_a_caller_signing_only_the_first_lists_the_others_without_a_url():
    document = documents.status_document(completed(FIRST, SECOND), "https://signed.test/first")

    assert [bundle.get("downloadUrl") for bundle in document["bundles"]] == ["https://signed.test/first", None]


def test_a_webhook_event_lists_each_zip_without_a_url():
    from chalicelib.webhooks.delivery import event_data

    data = event_data(completed(FIRST, SECOND), Settings.from_env({}))

    assert data["bundleCount"] == 2
    assert [(b.get("downloadUrl"), b["sha256"], b["fileIds"]) for b in data["bundles"]] == [
        (None, "a" * 64, [70000, 70014]),
        (None, "b" * 64, [70007]),
    ]
