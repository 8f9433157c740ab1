"""The asyncio twin of `_sync`: `AsyncClient` and `AsyncDownloadJob`, the same shape with `await`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from . import _common as common
from ._transport import RetryPolicy, error_for, send_async
from .errors import ApiError, DelineateError, UnexpectedResponse

ByteProgress = Callable[[int, "int | None"], None]


class AsyncClient:
    """One service: its base URL, API key and HTTP session. `async with` it or `await close()`."""

    def __init__(
        self,
        base_url: str = common.DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        long_poll: int = common.LONG_POLL_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.long_poll = long_poll  # seconds `wait` asks the server to hold a status poll; 0: plain polls
        headers = {"User-Agent": "delineate-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeouts = httpx.Timeout(max(timeout, long_poll + 10), connect=10.0)
        self._api = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeouts)
        self._bytes = httpx.AsyncClient(headers={"User-Agent": "delineate-client"}, timeout=timeouts)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._api.aclose()
        await self._bytes.aclose()

    async def _request(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        response = await send_async(self._api, method, path, self.retry, **kwargs)
        if response.status_code not in ok:
            raise error_for(response)
        return response

    async def begin_download(self, file_ids: Iterable[int], callback_url: str | None = None) -> AsyncDownloadJob:
        """Starts a job. Every retry of this call sends the same Idempotency-Key, so it makes one job at most."""
        body: dict[str, Any] = {"file_ids": [int(file_id) for file_id in file_ids]}
        if callback_url:
            body["callbackUrl"] = callback_url
        headers = {"Idempotency-Key": common.new_idempotency_key()}
        response = await self._request("POST", "/v1/download/initiate", (200, 202), json=body, headers=headers)
        accepted = response.json()
        common.checked_job_id(accepted.get("jobId"), UnexpectedResponse)
        job = AsyncDownloadJob(self, accepted["jobId"])
        job._document = {
            "jobId": accepted["jobId"],
            "status": accepted["status"],
            "progress": 0,
            "totalFiles": accepted["totalFileIds"],
        }
        return job

    async def get_job(self, job_id: str) -> AsyncDownloadJob:
        job = AsyncDownloadJob(self, job_id)
        await job.refresh()
        return job

    async def resume(self, token: str) -> AsyncDownloadJob:
        return await self.get_job(common.job_id_for(token, self.base_url))

    async def jobs(self, status: str | None = None, limit: int | None = None) -> AsyncIterator[dict]:
        cursor = None
        while True:
            params = {
                name: value for name, value in (("status", status), ("limit", limit), ("cursor", cursor)) if value
            }
            page = (await self._request("GET", "/v1/download/jobs", params=params)).json()
            for job in page.get("jobs", []):
                yield job
            cursor = page.get("nextCursor")
            if not cursor:
                return


class AsyncDownloadJob(common.JobHandle):
    """The async job handle: `await refresh()`, `wait()`, `cancel()`, `download()`, `download_files()`."""

    _kind = "AsyncDownloadJob"

    def __init__(self, client: AsyncClient, job_id: str) -> None:
        super().__init__(client.base_url, job_id)
        self._client = client

    async def _fetch(self, include_files: bool = False) -> dict:
        params = {"include": "files"} if include_files else None
        return (await self._client._request("GET", self._status_path(), params=params)).json()

    async def refresh(self, include_files: bool = False) -> AsyncDownloadJob:
        params = {"include": "files"} if include_files else None
        response = await self._client._request("GET", self._status_path(), params=params)
        self._remember(response)
        return self

    async def wait(
        self, timeout: float | None = None, on_progress: Callable[[AsyncDownloadJob], Any] | None = None
    ) -> AsyncDownloadJob:
        """As `DownloadJob.wait`; `on_progress` may be a plain function or a coroutine function."""
        polls = common.StatusPolls(timeout, self._client.long_poll)
        response = None
        if self.status is None or self._etag is None:
            response = await self._client._request("GET", self._status_path())
            self._remember(response)
        await _call(on_progress, self)
        while not self.done:
            if response is not None:
                await asyncio.sleep(polls.delay_after(response))
            headers = polls.next_headers(self.id, self.status, self._etag)
            response = await self._client._request("GET", self._status_path(), (200, 304), headers=headers)
            if response.status_code == 200:
                changed = self._remember(response)
                if changed:
                    await _call(on_progress, self)
        common.raise_for_outcome(self._document)
        return self

    async def cancel(self) -> AsyncDownloadJob:
        response = await self._client._request("DELETE", f"/v1/download/{self.id}", (200, 409))
        body = response.json()
        self._document = {key: value for key, value in body.items() if key not in ("error", "message", "requestId")}
        if response.status_code == 409 and body.get("status") != "cancelled":
            raise ApiError(body.get("message", "job already ended"), status=409, body=body)
        return self

    async def _bundle_url(self, volume: int = 1) -> str:
        params = common.volume_params(volume)
        response = await self._client._request("GET", f"/v1/download/{self.id}", (302,), params=params)
        return response.headers["location"]

    async def _completed(self) -> None:
        if not self.done:
            await self.wait()
        if self._document.get("downloadUrl") is None:
            await self.refresh()
        common.raise_if_nothing(self._document)

    async def download(
        self, path: str | Path | None = None, on_progress: ByteProgress | None = None
    ) -> common.Downloaded:
        """As `DownloadJob.download`."""
        await self._completed()
        entry = common.only_bundle(self._document)
        path = Path(path) if path else common.default_bundle_path(self.id)
        return await self._fetch_bundle(entry, 1, path, on_progress)

    async def download_bundles(
        self, path: str | Path | None = None, on_progress: ByteProgress | None = None
    ) -> list[common.Downloaded]:
        """As `DownloadJob.download_bundles`."""
        await self._completed()
        entries = common.bundle_entries(self._document)
        paths = common.volume_paths(Path(path) if path else common.default_bundle_path(self.id), len(entries))
        return [
            await self._fetch_bundle(entry, number, target, on_progress)
            for number, (entry, target) in enumerate(zip(entries, paths, strict=True), start=1)
        ]

    async def _fetch_bundle(
        self, entry: dict, volume: int, path: Path, on_progress: ByteProgress | None
    ) -> common.Downloaded:
        url = entry.get("downloadUrl") or await self._bundle_url(volume)
        fresh = lambda: self._bundle_url(volume)  # noqa: E731
        return await _fetch(self._client._bytes, url, path, entry.get("size"), entry.get("sha256"), fresh, on_progress)

    async def download_files(
        self, directory: str | Path, on_progress: Callable[[common.Downloaded], Any] | None = None
    ) -> list[common.Downloaded]:
        """As `DownloadJob.download_files`: `concurrency` files at a time."""
        if not self.done:
            await self.wait()
        await self.refresh(include_files=True)
        common.raise_if_nothing(self._document)
        directory = Path(directory)
        entries = [entry for entry in self.files if entry["status"] == "available"]
        targets = common.file_targets(entries, directory)
        directory.mkdir(parents=True, exist_ok=True)
        gate = asyncio.Semaphore(max(1, self._client.concurrency))

        async def fresh_url(file_id: int) -> str:
            for entry in (await self._fetch(include_files=True)).get("files", []):
                if entry["fileId"] == file_id and entry.get("downloadUrl"):
                    return entry["downloadUrl"]
            raise DelineateError(f"file {file_id} is no longer available")

        async def one(entry: dict, path: Path) -> common.Downloaded:
            async with gate:
                result = await _fetch(
                    self._client._bytes,
                    entry["downloadUrl"],
                    path,
                    entry.get("size"),
                    entry.get("sha256"),
                    lambda: fresh_url(entry["fileId"]),
                    None,
                )
            await _call(on_progress, result)
            return result

        return list(await asyncio.gather(*(one(entry, path) for entry, path in targets)))


async def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
    if callback is not None:
        outcome = callback(*args)
        if asyncio.iscoroutine(outcome):
            await outcome


async def _fetch(
    http: httpx.AsyncClient,
    url: str,
    path: Path,
    size: int | None,
    sha256: str | None,
    fresh_url: Callable[[], Awaitable[str]],
    on_progress: ByteProgress | None,
) -> common.Downloaded:
    """As `_sync._fetch`: `<path>.part`, resumed with Range after a break, a fresh URL after an expired one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    budget = common.DownloadBudget(path.name)
    with common.PartFile(path, size, sha256) as part:
        while True:
            try:
                if await _stream_rest(http, url, part, size, on_progress):
                    break
                budget.url_expired()
                url = await fresh_url()
            except httpx.TransportError as exc:
                await asyncio.sleep(budget.connection_broke(exc))
    return part.finish(size, sha256)


async def _stream_rest(
    http: httpx.AsyncClient, url: str, part: common.PartFile, size: int | None, on_progress: ByteProgress | None
) -> bool:
    """One GET for the bytes `part` still lacks; False when storage refused the URL as expired."""
    async with http.stream("GET", url, headers=part.range_headers()) as response:
        answer = common.storage_answer(response, part.written, size, part.path.name)
        if answer is common.StorageAnswer.URL_EXPIRED:
            await response.aread()
            return False
        if answer is common.StorageAnswer.START_OVER:
            part.start_over()
        if answer is not common.StorageAnswer.ALREADY_COMPLETE:
            async for chunk in response.aiter_bytes():
                part.write(chunk)
                if on_progress:
                    on_progress(part.written, size)
    return True
