"""Watching a job without polling it: versions, conditional status reads, long-poll and SSE.

API Gateway REST (what Chalice deploys) buffers a Lambda's whole response and
cuts the integration at 29 s, so nothing here streams: a held request is one
Lambda invocation that re-reads the job item until its visible state changes
or a bound passes, then answers in full. Long-poll (`If-None-Match` +
`Prefer: wait=N`, RFC 7240) answers at the first change; the SSE stream writes
one event per change and ends at the terminal event or the bound, and
EventSource reconnects with `Last-Event-ID` (WHATWG HTML: a completed response
is re-fetched after the `retry:` time, a non-200 answer is not).

The version of a status document is a hash of the job's visible state, not of
the document: `downloadUrl` is re-signed on reads, so two reads of an unchanged
job differ byte for byte. Versions are strong ETags and SSE event ids alike.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from chalice import Response

from chalicelib.api import http
from chalicelib.config import MAX_LONG_POLL_SECONDS
from chalicelib.jobs import documents
from chalicelib.models import Job
from chalicelib.polling import poll

MAX_WAIT_SECONDS = MAX_LONG_POLL_SECONDS  # Prefer: wait above this is clamped (Preference-Applied says so)
STREAM_SECONDS = MAX_LONG_POLL_SECONDS  # one SSE response, well under API Gateway's 29 s
# One SSE response, in bytes. Lambda answers 502 past a 6 MB response payload (Lambda
# quotas, "Invocation payload (request and response)"); with `?include=files` one event
# is a whole status document, and a 1,000-file job once gave 6.3 MB in 9 events.
STREAM_MAX_BYTES = 1024 * 1024
ANSWER_MARGIN_MS = 1000  # a held request answers this long before REQUEST_TIMEOUT_MS
FIRST_INTERVAL, MAX_INTERVAL, GROWTH = 0.2, 1.0, 1.5  # re-reads: a change shows within about a second

_WAIT = re.compile(r"^\s*wait\s*=\s*\"?(\d{1,9})\"?\s*$", re.IGNORECASE)
_TAG = re.compile(r'(?:W/)?"([^"]*)"|(\*)')

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def version_of(job: Job, include_files: bool) -> str:
    """Changes whenever the document a client would see changes, and only then.

    The status document is built without its URL (presence and size still
    count, through resultKey and size); with `?include=files` the per-file list
    moves with completedFiles, which the worker counts in the same transaction
    that records a file. The flag is hashed in, as each representation has its
    own strong ETag.
    """
    state = documents.status_document(job, None)
    state.update(resultKey=job.result_key, size=job.size, files=include_files)
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def etag(version: str) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class Condition:
    """What a status request knows and how long it may be held: `If-None-Match` and `Prefer: wait`."""

    known: frozenset[str] = frozenset()
    wait_seconds: int | None = None  # the clamped preference; None when the client asked for none

    def matches(self, version: str) -> bool:
        return "*" in self.known or version in self.known


def condition_from(headers: Mapping[str, str] | None) -> Condition:
    """Lenient by design: a Prefer this server does not understand is ignored (RFC 7240 §2)."""
    headers = headers or {}
    return Condition(parse_if_none_match(headers.get("if-none-match")), parse_prefer_wait(headers.get("prefer")))


def parse_if_none_match(value: str | None) -> frozenset[str]:
    """Entity tags of If-None-Match; its comparison is weak (RFC 9110 §13.1.2), so W/ is dropped."""
    if not value:
        return frozenset()
    return frozenset(quoted or star for quoted, star in _TAG.findall(value))


def parse_prefer_wait(value: str | None) -> int | None:
    """`wait=N` among comma-separated preferences (parameters after `;` ignored), clamped to 20."""
    for preference in (value or "").split(","):
        match = _WAIT.match(preference.split(";", 1)[0])
        if match:
            return min(int(match.group(1)), MAX_WAIT_SECONDS)
    return None


def hold_seconds(wanted: float, request_timeout_ms: int) -> float:
    """How long a request may be held: what was asked, never past REQUEST_TIMEOUT_MS less a margin."""
    return max(0.0, min(wanted, (request_timeout_ms - ANSWER_MARGIN_MS) / 1000))


def wait_for_change(
    read: Callable[[], Job],
    version: Callable[[Job], str],
    seen: str,
    deadline: float,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> Job | None:
    """Re-reads the job at a growing interval (capped at a second) until its version is not `seen`.

    Returns the changed job, or None once `deadline` (a `clock` value) passes.
    The caller has just read it, so the first re-read waits one interval.
    """

    def changed() -> Job | None:
        job = read()
        return job if version(job) != seen else None

    if deadline - clock() <= 0:
        return None
    sleep(min(FIRST_INTERVAL, deadline - clock()))
    return poll(
        changed,
        deadline - clock(),
        interval=FIRST_INTERVAL * GROWTH,
        growth=GROWTH,
        max_interval=MAX_INTERVAL,
        sleep=sleep,
        clock=clock,
    )


# -- server-sent events -----------------------------------------------------------------


def sse_event(name: str, version: str, document: dict) -> str:
    """One event; the document is one line of JSON, so one `data:` line carries it."""
    return f"event: {name}\nid: {version}\ndata: {json.dumps(document, separators=(',', ':'))}\n\n"


Render = Callable[[Job, bool], dict]  # (job, with per-file URLs) -> the status document


@dataclass
class EventStream:
    """One bounded SSE response for one job, in the earlier service's vocabulary.

    `connected` (the current document) is the first response, answered at
    once, as the gateway would otherwise hold it back for the whole bound; `progress`
    follows each change, including one that happened while EventSource was
    reconnecting (its Last-Event-ID is not the current version; when it is,
    nothing is repeated unless the hold is zero); `completed`, `failed` or
    `cancelled` ends it. A client that reconnects after the terminal event gets
    the terminal event again, so it never misses it: clients close on a terminal event.

    A response ends at `deadline` or before an event would take it past
    `max_bytes`; the reconnect resumes from the last id sent. Per-file URLs
    (`?include=files`) ride only on the terminal event: intermediate events carry
    file statuses, about 70 bytes a file instead of 1-2 KB with a presigned URL.
    The first event of a response is always sent, so a lone terminal event can
    exceed `max_bytes`: it is one status document, no larger than GET status returns.
    """

    read: Callable[[], Job]
    render: Render
    version: Callable[[Job], str]
    retry_ms: int
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    max_bytes: int = STREAM_MAX_BYTES

    def body(self, job: Job, last_event_id: str | None, deadline: float) -> str:
        current = self.version(job)
        out = _Body(f"retry: {self.retry_ms}\n\n", self.max_bytes)
        opening = self._opening(job, current, last_event_id, holds=deadline > self.clock())
        if opening:
            out.add(sse_event(opening, current, self.render(job, False)))
        if not last_event_id:
            deadline = self.clock()  # a buffered first answer must not wait: the client sees the job at once
        changed: Job | None = job
        while changed is not None and not job.status.terminal:
            changed = wait_for_change(self.read, self.version, current, deadline, self.sleep, self.clock)
            if changed is not None:
                job, current = changed, self.version(changed)
                if not job.status.terminal and not out.add(sse_event("progress", current, self.render(job, False))):
                    return out.text()  # full: the reconnect's Last-Event-ID is older, so it gets this change
        if job.status.terminal:
            out.add(sse_event(job.status.value, current, self.render(job, True)))
        return out.text()

    @staticmethod
    def _opening(job: Job, current: str, last_event_id: str | None, holds: bool) -> str | None:
        """The event a response starts with, if any: `connected`, a `progress` missed while reconnecting,
        or, with no hold to wait in, the current state again so every response carries one event."""
        if not last_event_id:
            return "connected"
        if job.status.terminal:
            return None  # the terminal event follows
        return "progress" if current != last_event_id or not holds else None


class _Body:
    """An event-stream body that takes events while they fit in `max_bytes` (the first always)."""

    def __init__(self, head: str, max_bytes: int) -> None:
        self._parts, self._events, self._size, self._max = [head], 0, len(head.encode()), max_bytes

    def add(self, event: str) -> bool:
        size = len(event.encode())
        if self._events and self._size + size > self._max:
            return False
        self._parts.append(event)
        self._events += 1
        self._size += size
        return True

    def text(self) -> str:
        return "".join(self._parts)


# -- answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    """A conditional status read: the document, or None when the client's version is still current."""

    version: str
    terminal: bool
    document: dict | None
    applied_wait: int | None = None  # seconds the request could be held, for Preference-Applied


def status_response(watched: Watched, retry_after_seconds: int) -> Response:
    """200 with the document, or 304 (no body) when the client's ETag is still current; both carry the ETag."""
    if watched.document is None:
        response = Response(body="", status_code=304, headers={"Cache-Control": "no-store"})
        if not watched.terminal:
            response.headers["Retry-After"] = str(retry_after_seconds)
    else:
        response = http.status_response(watched.document, retry_after_seconds)
    response.headers["ETag"] = etag(watched.version)
    if watched.applied_wait is not None:
        response.headers["Preference-Applied"] = f"wait={watched.applied_wait}"
    return response


def stream_response(body: str) -> Response:
    return Response(
        body=body,
        status_code=200,
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store"},
    )
