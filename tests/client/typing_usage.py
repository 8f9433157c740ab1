"""Code a user would write, checked by mypy (`make lint`, client/mypy.ini) against the installed package.

Never run: it is there to be type-checked. Without py.typed in the installed package mypy calls
`delineate_client` untyped and fails; the `type: ignore`s must each be needed (warn_unused_ignores),
so the public API cannot quietly turn into Any either.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

from delineate_client import (
    AsyncClient,
    AsyncDownloadJob,
    Client,
    Downloaded,
    DownloadJob,
    JobFailed,
    RetryPolicy,
    WebhookVerificationError,
    verify_webhook,
)


def download(url: str, file_ids: list[int]) -> Path:
    with Client(url, retry=RetryPolicy(attempts=3), long_poll=0) as client:
        job = client.begin_download(file_ids, callback_url="https://example.com/hooks")
        assert_type(job, DownloadJob)
        assert_type(job.token, str)
        try:
            assert_type(job.wait(timeout=60, on_progress=lambda job: print(job.progress)), DownloadJob)
        except JobFailed as failed:
            raise SystemExit(failed.message) from failed
        result = job.download("bundle.zip")
        assert_type(result, Downloaded)
        client.begin_download("70000")  # type: ignore[arg-type]
        return result.path


async def download_async(url: str, token: str) -> list[Downloaded]:
    async with AsyncClient(url) as client:
        job = await client.resume(token)
        assert_type(job, AsyncDownloadJob)
        await job.wait(timeout=60)
        return await job.download_files(Path("files"))


def receive(secret: str, headers: dict[str, str], body: bytes) -> str | None:
    try:
        event = verify_webhook(secret, headers, body)
    except WebhookVerificationError:
        return None
    event_id = event["_eventId"]
    return str(event_id) if event_id else None
