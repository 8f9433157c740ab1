"""What the sync and async clients share: tokens, poll pacing, outcomes and integrity checks."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import stat
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO, TypeGuard

import httpx

from ._transport import parse_retry_after
from .errors import (
    DelineateError,
    IntegrityError,
    InvalidToken,
    JobCancelled,
    JobFailed,
    NothingAvailable,
    ServiceUnavailable,
    SeveralBundles,
    UnexpectedResponse,
)

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
LONG_POLL_SECONDS = 20  # the most `Prefer: wait=N` asks for (the server's cap, under API Gateway's 29 s)
FIRST_POLL_DELAY = 1.0
POLL_GROWTH = 1.5
MAX_POLL_DELAY = 5.0  # a few seconds: many clients may wait on a stage that holds no poll (LONG_POLL_MAX_SECONDS=0)
MAX_BREAKS = 8  # broken connections one download survives (each resumes with Range)
MAX_URL_REFRESHES = 3  # expired presigned URLs replaced during one download
TOKEN_PREFIX = "dlj1."
# A job id goes into URL paths and the default file name, so it must be what the service makes: a UUID.
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE)


class WaitTimeout(DelineateError, TimeoutError):
    """`wait(timeout=...)` ran out before the job ended; the job keeps running."""


@dataclass(frozen=True)
class Downloaded:
    """A file in place: its path, size in bytes and SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str


def new_idempotency_key() -> str:
    return f"delineate-client-{uuid.uuid4()}"


def make_token(base_url: str, job_id: str) -> str:
    """An opaque string naming the job and the service, for `Client.resume` in another process."""
    raw = json.dumps({"url": base_url, "job": job_id}, separators=(",", ":")).encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_token(token: str) -> tuple[str | None, str]:
    """(base URL or None, job id) from a token; a bare job id is accepted too. InvalidToken if malformed."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX):
        return None, token
    payload = token[len(TOKEN_PREFIX) :]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        url, job_id = data["url"], data["job"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken(f"not a job token: {token!r}") from exc
    if not isinstance(url, str) or not isinstance(job_id, str):
        raise InvalidToken(f"not a job token: {token!r}")
    return url, job_id


def job_id_for(token: str, base_url: str) -> str:
    """The job id a token (or a bare job id) names, for a client of `base_url`.

    A token also names the service it came from. The client never follows it there: that would send
    the API key to whatever host a pasted token names. A token naming another service is refused;
    the caller who means that service passes its base URL.
    """
    url, job_id = read_token(token)
    if url is not None and url.rstrip("/") != base_url.rstrip("/"):
        raise InvalidToken(
            f"the token names the service {url}, not {base_url}; to resume it there, choose that URL"
            f" yourself (Client({url!r}), or --url {url} on the command line)"
        )
    return checked_job_id(job_id)


def checked_job_id(value: object, error: type[DelineateError] = InvalidToken) -> str:
    """`value` if it is a job id (a UUID); `error` otherwise, before it reaches a URL or a file name."""
    if not isinstance(value, str) or not JOB_ID.fullmatch(value):
        raise error(f"{value!r} is not a job id (a UUID)")
    return value


class JobHandle:
    """What the sync and async job handles share: the last status document seen, read as properties."""

    _kind = "DownloadJob"

    def __init__(self, base_url: str, job_id: str) -> None:
        self._base_url = base_url
        self.id = checked_job_id(job_id)
        self._document: dict = {"jobId": job_id}
        self._etag: str | None = None

    def __repr__(self) -> str:
        return f"<{self._kind} {self.id} {self.status} {self.progress}%>"

    @property
    def document(self) -> dict:
        """The last status document seen."""
        return dict(self._document)

    @property
    def status(self) -> str | None:
        return self._document.get("status")

    @property
    def progress(self) -> int:
        return int(self._document.get("progress") or 0)

    @property
    def files(self) -> list[dict]:
        """Per-file entries of the last `refresh(include_files=True)` (or `download_files`); [] before that."""
        return list(self._document.get("files") or [])

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def token(self) -> str:
        return make_token(self._base_url, self.id)

    def _status_path(self) -> str:
        return f"/v1/download/status/{self.id}"

    def _remember(self, response: httpx.Response) -> bool:
        """Keeps a 200 status answer's document and ETag; True when the document changed."""
        document = response.json()
        changed, self._document = document != self._document, document
        self._etag = response.headers.get("etag")
        return bool(changed)


class StatusPolls:
    """The schedule of one `wait`: how long to sleep after a status answer and what to ask for next.

    The twins do the sleeping and the requests; this decides, so both poll alike. A stage may hold no
    poll at all (LONG_POLL_MAX_SECONDS=0 answers `Prefer: wait` at once), so the pause never relies
    on the server having held the request: it is what Retry-After asks, else a pace growing from 1 s
    x1.5 up to MAX_POLL_DELAY less the time the request was held, and never past the deadline.
    """

    def __init__(self, timeout: float | None, long_poll: int = LONG_POLL_SECONDS) -> None:
        self.timeout = timeout
        self.long_poll = long_poll
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._pace = FIRST_POLL_DELAY

    def delay_after(self, response: httpx.Response) -> float:
        """Seconds to sleep before the next poll (see the class)."""
        delay = parse_retry_after(response.headers.get("retry-after"))
        if not delay:  # absent, unreadable or 0: pace ourselves
            pace, self._pace = self._pace, min(self._pace * POLL_GROWTH, MAX_POLL_DELAY)
            delay = max(0.0, pace - response.elapsed.total_seconds())
        if self._deadline is not None:
            delay = min(delay, max(0.0, self._deadline - time.monotonic()))
        return delay

    def next_headers(self, job_id: str, status: str | None, etag: str | None) -> dict[str, str]:
        """Headers of the next status poll: conditional once there is an ETag, and a long-poll of up to
        `long_poll` seconds while a second of the timeout is left (0 asks for none).

        Raises WaitTimeout once the deadline has passed.
        """
        remaining = None if self._deadline is None else self._deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(f"job {job_id} still {status} after {self.timeout} s")
        if not etag:
            return {}
        hold = self.long_poll if remaining is None else int(min(remaining, self.long_poll))
        return {"If-None-Match": etag, "Prefer": f"wait={hold}"} if hold >= 1 else {"If-None-Match": etag}


def raise_for_outcome(document: dict) -> None:
    """Raises the typed error of a job that ended without a bundle; returns for a completed one."""
    status = document.get("status")
    if status == "failed":
        raise JobFailed(f"job {document.get('jobId')} failed: {document.get('error') or 'no reason given'}", document)
    if status == "cancelled":
        raise JobCancelled(f"job {document.get('jobId')} was cancelled", document)


def raise_if_nothing(document: dict) -> None:
    raise_for_outcome(document)
    if not document.get("downloadUrl") and not document.get("availableFiles"):
        raise NothingAvailable(f"job {document.get('jobId')}: none of the requested files was available", document)


def presigned_url_expired(response: httpx.Response) -> bool:
    """S3 answers 403 AccessDenied ("Request has expired") for a stale presigned URL; 400/403 for bad signatures."""
    return response.status_code in (400, 403)


class StorageAnswer(Enum):
    """What one GET of a presigned URL calls for (see `storage_answer`)."""

    URL_EXPIRED = "ask for a fresh URL and try again"
    ALREADY_COMPLETE = "every byte is already in the .part file"
    START_OVER = "the whole object: drop what was written and take it from the start"
    RESUME = "the bytes after those already written"


def storage_answer(response: httpx.Response, written: int, size: int | None, name: str) -> StorageAnswer:
    """Decides what to do with storage's answer to a GET asking for the bytes from `written` on.

    A 5xx raises httpx.RemoteProtocolError so the download counts it as a broken connection and resumes;
    any other refusal raises DelineateError.
    """
    status = response.status_code
    if presigned_url_expired(response):
        return StorageAnswer.URL_EXPIRED
    if status == 416 and size is not None and written == size:
        return StorageAnswer.ALREADY_COMPLETE
    if status >= 500:
        raise httpx.RemoteProtocolError(f"storage answered {status}")
    if status not in (200, 206):
        raise DelineateError(f"storage answered {status} for {name}")
    if status == 200 or content_range_start(response) != written:
        return StorageAnswer.START_OVER
    return StorageAnswer.RESUME


class DownloadBudget:
    """How many expired URLs and broken connections one download survives, and the pause after a break."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.refreshes = 0
        self.breaks = 0

    def url_expired(self) -> None:
        """Counts a refused URL; raises DelineateError once MAX_URL_REFRESHES fresh ones were refused too."""
        self.refreshes += 1
        if self.refreshes > MAX_URL_REFRESHES:
            raise DelineateError(f"storage refused {self.name} after {self.refreshes - 1} fresh URLs")

    def connection_broke(self, exc: httpx.TransportError) -> float:
        """Counts a break; the seconds to pause before resuming, or ServiceUnavailable past MAX_BREAKS."""
        self.breaks += 1
        if self.breaks > MAX_BREAKS:
            raise ServiceUnavailable(f"download of {self.name} broke {self.breaks} times: {exc}") from exc
        return min(0.2 * 2 ** (self.breaks - 1), 5.0)


def part_path(path: Path, sha256: str | None = None) -> Path:
    """`<path>.part`, or `<path>.<first 16 of its SHA-256>.part` when the object's digest is known:
    a leftover by that name can only be the start of that same object."""
    tag = f".{sha256.lower()[:16]}" if is_sha256(sha256) else ""
    return path.with_name(f"{path.name}{tag}.part")


# A .part file is made anew, never opened through a symlink someone planted at its name (which would
# write the download into the link's target), and a leftover is reopened only if it is a regular file.
CREATE_PART = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_BINARY", 0)
OPEN_LEFTOVER = os.O_RDWR | os.O_NOFOLLOW | getattr(os, "O_BINARY", 0)


def open_leftover(part: Path, size: int | None) -> BinaryIO | None:
    """The leftover `.part` file, open for reading and writing, or None: none there, a symlink, not a
    regular file, or longer than the object."""
    try:
        fd = os.open(part, OPEN_LEFTOVER)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW refused a symlink
            return None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (size is not None and info.st_size > size):
        os.close(fd)
        return None
    return os.fdopen(fd, "r+b")


def is_sha256(value: str | None) -> TypeGuard[str]:
    return value is not None and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


class PartFile:
    """`<path>...part` while a download runs: the bytes so far, their SHA-256, and the Range to ask for next.

    Local file work only (the same for both twins). When the object's SHA-256 is announced, the part
    file is named after it and outlives an interruption (Ctrl-C, a crash, a refusal): the next download
    of that object to that path, in any process, hashes what is there and asks only for the rest.
    Without a digest to name it by, leaving the `with` by an exception removes it. After a clean exit
    `finish` checks the whole against the announcement and renames it into place.
    """

    def __init__(self, path: Path, size: int | None = None, sha256: str | None = None) -> None:
        self.path = path
        self.part = part_path(path, sha256)
        self.keep = is_sha256(sha256)
        self.written = 0
        self._digest = hashlib.sha256()
        self._out: BinaryIO  # opened by __enter__
        self._size = size

    def __enter__(self) -> PartFile:
        leftover = open_leftover(self.part, self._size) if self.keep else None
        if leftover is not None:
            self._out = leftover
            try:
                self._take_leftover()
            except BaseException:
                self._out.close()
                raise
            return self
        discard(self.part)  # stale, too long, not a regular file or a symlink: unlinking removes only the link
        try:
            self._out = os.fdopen(os.open(self.part, CREATE_PART, 0o666), "w+b")
        except FileExistsError as exc:
            raise DelineateError(f"{self.part} appeared while the download was starting; not writing to it") from exc
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._out.close()
        if exc_type is not None and not self.keep:
            discard(self.part)

    def _take_leftover(self) -> None:
        while chunk := self._out.read(1 << 20):
            self._digest.update(chunk)
            self.written += len(chunk)

    def range_headers(self) -> dict[str, str]:
        """Asks for the rest of the object once some of it is here."""
        return {"Range": f"bytes={self.written}-"} if self.written else {}

    def start_over(self) -> None:
        self._out.seek(0)
        self._out.truncate()
        self._digest, self.written = hashlib.sha256(), 0

    def write(self, chunk: bytes) -> None:
        self._out.write(chunk)
        self._digest.update(chunk)
        self.written += len(chunk)

    def finish(self, size: int | None, sha256: str | None) -> Downloaded:
        return finish(self.part, self.path, self.written, self._digest, size, sha256)


def finish(
    part: Path, path: Path, written: int, digest: hashlib._Hash, size: int | None, sha256: str | None
) -> Downloaded:
    """Checks the bytes against what the status document announced, then renames into place.

    os.replace is atomic and replaces the entry at `path` itself: a symlink there is replaced by the
    file, not written through, so `path` never ends up a link.
    """
    actual = digest.hexdigest()
    if size is not None and written != size:
        discard(part)
        raise IntegrityError(f"{path.name}: got {written} bytes, the service announced {size}")
    if sha256 and actual.lower() != sha256.lower():
        discard(part)
        raise IntegrityError(f"{path.name}: SHA-256 {actual} does not match the announced {sha256}")
    os.replace(part, path)
    return Downloaded(path, written, actual)


def discard(part: Path) -> None:
    try:
        part.unlink()
    except FileNotFoundError:
        pass


def content_range_start(response: httpx.Response) -> int | None:
    """The first byte of a 206 answer (`Content-Range: bytes 100-199/200`)."""
    value = response.headers.get("content-range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def file_targets(entries: list[dict], directory: Path) -> list[tuple[dict, Path]]:
    """Each entry with its path, `directory/<fileId>.zip`, all checked before any download starts.

    The file id comes from the service and becomes a file name, so only an integer is taken.
    """
    targets = []
    for entry in entries:
        file_id = entry.get("fileId")
        if type(file_id) is not int:  # not bool, not "../x"
            raise UnexpectedResponse(f"the service sent file id {file_id!r}, which is not an integer")
        targets.append((entry, inside(directory, f"{file_id}.zip")))
    return targets


def default_bundle_path(job_id: str) -> Path:
    """`delineate-<job id>.zip` in the current directory."""
    return inside(Path("."), f"delineate-{checked_job_id(job_id)}.zip")


def inside(directory: Path, name: str) -> Path:
    """`directory/name`, once it is sure to resolve to an entry of `directory` itself.

    The last component is not resolved: whatever is there (a symlink included) is replaced by
    `os.replace`, never written through.
    """
    root = directory.resolve()
    candidate = root / name
    if candidate.parent.resolve() != root or candidate.name in ("", ".", ".."):
        raise DelineateError(f"{name!r} would be written outside {directory}")
    return directory / name


def bundle_entries(document: dict) -> list[dict]:
    """The zips of a completed job, in volume order: its `bundles`, or (a service from before volumes)
    the one its `downloadUrl`, `size` and `sha256` describe. Each has `downloadUrl`, `size`, `sha256`."""
    entries = document.get("bundles")
    first = {key: document.get(key) for key in ("downloadUrl", "size", "sha256") if document.get(key) is not None}
    if isinstance(entries, list) and entries:
        if not all(isinstance(entry, dict) for entry in entries):
            raise UnexpectedResponse(f"job {document.get('jobId')}: `bundles` is not a list of objects")
        # The top-level fields describe the first zip: the download is checked against them, as always.
        return [{**entries[0], **first}, *entries[1:]]
    return [first] if first.get("downloadUrl") else []


def only_bundle(document: dict) -> dict:
    """The job's one zip; SeveralBundles when the service split it into volumes."""
    entries = bundle_entries(document)
    if len(entries) > 1:
        raise SeveralBundles(
            f"job {document.get('jobId')} was split into {len(entries)} zips; download_bundles() fetches them all"
        )
    return entries[0]


def volume_paths(path: Path, count: int) -> list[Path]:
    """Where each of `count` zips goes: `path` for one; `<stem>-1-of-3<suffix>`, ... beside it for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{number}-of-{count}{path.suffix}") for number in range(1, count + 1)]


def volume_params(volume: int) -> dict[str, int] | None:
    """The query of `GET /v1/download/{id}` for one zip: none for the first (what older services serve)."""
    return {"volume": volume} if volume > 1 else None
