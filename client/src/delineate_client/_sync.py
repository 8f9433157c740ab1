"""The blocking client: `Client` and its job handle `DownloadJob`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from . import _common as common
from ._transport import RetryPolicy, error_for, send
from .errors import ApiError, DelineateError, UnexpectedResponse

ByteProgress = Callable[[int, "int | None"], None]


class Client:
    """One service: its base URL, API key and HTTP session. Use as a context manager or call `close()`."""

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
        # A long-poll holds a request up to `long_poll` s, so reads may take that long.
        timeouts = httpx.Timeout(max(timeout, long_poll + 10), connect=10.0)
        self._api = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeouts)
        # Presigned URLs carry their own authorization: the API key never goes to storage.
        self._bytes = httpx.Client(headers={"User-Agent": "delineate-client"}, timeout=timeouts)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()
        self._bytes.close()

    def _request(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        response = send(self._api, method, path, self.retry, **kwargs)
        if response.status_code not in ok:
            raise error_for(response)
        return response

    def begin_download(self, file_ids: Iterable[int], callback_url: str | None = None) -> DownloadJob:
        """Starts a job. Every retry of this call sends the same Idempotency-Key, so it makes one job at most."""
        body: dict[str, Any] = {"file_ids": [int(file_id) for file_id in file_ids]}
        if callback_url:
            body["callbackUrl"] = callback_url
        headers = {"Idempotency-Key": common.new_idempotency_key()}
        response = self._request("POST", "/v1/download/initiate", (200, 202), json=body, headers=headers)
        accepted = response.json()
        common.checked_job_id(accepted.get("jobId"), UnexpectedResponse)
        job = DownloadJob(self, accepted["jobId"])
        job._document = {
            "jobId": accepted["jobId"],
            "status": accepted["status"],
            "progress": 0,
            "totalFiles": accepted["totalFileIds"],
        }
        return job

    def get_job(self, job_id: str) -> DownloadJob:
        """The job's handle with its current status (JobNotFound if there is none)."""
        job = DownloadJob(self, job_id)
        job.refresh()
        return job

    def resume(self, token: str) -> DownloadJob:
        """The job a `DownloadJob.token` names (a bare job id works too), e.g. in another process."""
        return self.get_job(common.job_id_for(token, self.base_url))

    def jobs(self, status: str | None = None, limit: int | None = None) -> Iterator[dict]:
        """The API key's jobs, newest first, following `nextCursor` (Forbidden when the server has no keys)."""
        cursor = None
        while True:
            params = {
                name: value for name, value in (("status", status), ("limit", limit), ("cursor", cursor)) if value
            }
            page = self._request("GET", "/v1/download/jobs", params=params).json()
            yield from page.get("jobs", [])
            cursor = page.get("nextCursor")
            if not cursor:
                return


class DownloadJob(common.JobHandle):
    """A handle on one job. `refresh`, `wait`, `cancel`, `download`, `download_files`; `token` to resume elsewhere."""

    _kind = "DownloadJob"

    def __init__(self, client: Client, job_id: str) -> None:
        super().__init__(client.base_url, job_id)
        self._client = client

    def _fetch(self, include_files: bool = False) -> dict:
        params = {"include": "files"} if include_files else None
        response = self._client._request("GET", self._status_path(), params=params)
        return response.json()

    def refresh(self, include_files: bool = False) -> DownloadJob:
        response = self._client._request(
            "GET", self._status_path(), params={"include": "files"} if include_files else None
        )
        self._remember(response)
        return self

    def wait(
        self, timeout: float | None = None, on_progress: Callable[[DownloadJob], None] | None = None
    ) -> DownloadJob:
        """Blocks until the job ends; returns self when completed, raises JobFailed / JobCancelled otherwise.

        Long-polls (`If-None-Match` + `Prefer: wait=N`, N the client's `long_poll`) where the server holds
        them; after an answer that was not held it sleeps the server's Retry-After, else 1 s growing x1.5
        up to 5 s, never past `timeout`: many clients waiting never poll in a hot loop.
        """
        polls = common.StatusPolls(timeout, self._client.long_poll)
        response = None
        if self.status is None or self._etag is None:
            response = self._client._request("GET", self._status_path())
            self._remember(response)
        if on_progress:
            on_progress(self)
        while not self.done:
            if response is not None:
                time.sleep(polls.delay_after(response))
            headers = polls.next_headers(self.id, self.status, self._etag)
            response = self._client._request("GET", self._status_path(), (200, 304), headers=headers)
            if response.status_code == 200:
                changed = self._remember(response)
                if changed and on_progress:
                    on_progress(self)
        common.raise_for_outcome(self._document)
        return self

    def cancel(self) -> DownloadJob:
        """Cancels the job. Cancelling a cancelled job is fine; a completed or failed one raises ApiError (409)."""
        response = self._client._request("DELETE", f"/v1/download/{self.id}", (200, 409))
        body = response.json()
        self._document = {key: value for key, value in body.items() if key not in ("error", "message", "requestId")}
        if response.status_code == 409 and body.get("status") != "cancelled":
            raise ApiError(body.get("message", "job already ended"), status=409, body=body)
        return self

    def _bundle_url(self, volume: int = 1) -> str:
        """A freshly signed URL of zip `volume` from `GET /v1/download/{id}?volume=N` (302)."""
        params = common.volume_params(volume)
        response = self._client._request("GET", f"/v1/download/{self.id}", (302,), params=params)
        return response.headers["location"]

    def _completed(self) -> None:
        if not self.done:
            self.wait()
        if self._document.get("downloadUrl") is None:
            self.refresh()
        common.raise_if_nothing(self._document)

    def download(self, path: str | Path | None = None, on_progress: ByteProgress | None = None) -> common.Downloaded:
        """Waits if needed, then streams the bundle to `<path>.part`, checks size and SHA-256, renames to `path`.

        Survives broken connections (resumes with Range) and expired URLs (asks for a fresh one).
        A job split into several zips raises SeveralBundles: `download_bundles` fetches them all.
        """
        self._completed()
        entry = common.only_bundle(self._document)
        path = Path(path) if path else common.default_bundle_path(self.id)
        return self._fetch_bundle(entry, 1, path, on_progress)

    def download_bundles(
        self, path: str | Path | None = None, on_progress: ByteProgress | None = None
    ) -> list[common.Downloaded]:
        """Every zip of the job, one after another, each checked against its size and SHA-256:
        `path` for one; `<stem>-1-of-N<suffix>`, ... beside it when the service split the job (BUNDLE_MAX_BYTES)."""
        self._completed()
        entries = common.bundle_entries(self._document)
        paths = common.volume_paths(Path(path) if path else common.default_bundle_path(self.id), len(entries))
        return [
            self._fetch_bundle(entry, number, target, on_progress)
            for number, (entry, target) in enumerate(zip(entries, paths, strict=True), start=1)
        ]

    def _fetch_bundle(
        self, entry: dict, volume: int, path: Path, on_progress: ByteProgress | None
    ) -> common.Downloaded:
        url = entry.get("downloadUrl") or self._bundle_url(volume)
        fresh = lambda: self._bundle_url(volume)  # noqa: E731
        return _fetch(self._client._bytes, url, path, entry.get("size"), entry.get("sha256"), fresh, on_progress)

    def download_files(
        self, directory: str | Path, on_progress: Callable[[common.Downloaded], None] | None = None
    ) -> list[common.Downloaded]:
        """Each available file by its own URL into `directory/<fileId>.zip`, a few at a time."""
        if not self.done:
            self.wait()
        self.refresh(include_files=True)
        common.raise_if_nothing(self._document)
        directory = Path(directory)
        entries = [entry for entry in self.files if entry["status"] == "available"]
        targets = common.file_targets(entries, directory)
        directory.mkdir(parents=True, exist_ok=True)

        def fresh_url(file_id: int) -> str:
            for entry in self._fetch(include_files=True).get("files", []):
                if entry["fileId"] == file_id and entry.get("downloadUrl"):
                    return entry["downloadUrl"]
            raise DelineateError(f"file {file_id} is no longer available")

        def one(entry: dict, path: Path) -> common.Downloaded:
            result = _fetch(
                self._client._bytes,
                entry["downloadUrl"],
                path,
                entry.get("size"),
                entry.get("sha256"),
                lambda: fresh_url(entry["fileId"]),
                None,
            )
            if on_progress:
                on_progress(result)
            return result

        with ThreadPoolExecutor(max_workers=max(1, self._client.concurrency)) as pool:
            return list(pool.map(lambda target: one(*target), targets))


def _fetch(
    http: httpx.Client,
    url: str,
    path: Path,
    size: int | None,
    sha256: str | None,
    fresh_url: Callable[[], str],
    on_progress: ByteProgress | None,
) -> common.Downloaded:
    """Streams `url` to `<path>.part` and renames it to `path` once size and SHA-256 check out.

    A broken connection resumes with Range after a pause; a URL storage refuses as expired is replaced
    by `fresh_url()`. `common.DownloadBudget` says when to give up on either.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    budget = common.DownloadBudget(path.name)
    with common.PartFile(path, size, sha256) as part:
        while True:
            try:
                if _stream_rest(http, url, part, size, on_progress):
                    break
                budget.url_expired()
                url = fresh_url()
            except httpx.TransportError as exc:
                time.sleep(budget.connection_broke(exc))
    return part.finish(size, sha256)


def _stream_rest(
    http: httpx.Client, url: str, part: common.PartFile, size: int | None, on_progress: ByteProgress | None
) -> bool:
    """One GET for the bytes `part` still lacks; False when storage refused the URL as expired."""
    with http.stream("GET", url, headers=part.range_headers()) as response:
        answer = common.storage_answer(response, part.written, size, part.path.name)
        if answer is common.StorageAnswer.URL_EXPIRED:
            response.read()
            return False
        if answer is common.StorageAnswer.START_OVER:
            part.start_over()
        if answer is not common.StorageAnswer.ALREADY_COMPLETE:
            for chunk in response.iter_bytes():
                part.write(chunk)
                if on_progress:
                    on_progress(part.written, size)
    return True
