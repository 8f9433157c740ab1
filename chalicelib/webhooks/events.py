"""Signed job webhooks: the event, its signature, and the retry schedule.

When a job reaches a terminal state the service POSTs an event to the job's
callbackUrl:

    {"type": "job.completed", "id": "evt_...", "createdAt": "...", "data": <status document>}
    Delineate-Event-Id: evt_...
    Delineate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The scheme is Stripe's: the timestamp is signed with the body, so a receiver
rejects replays older than its tolerance (300 s by default), and a header may
carry several v1 values (one per secret while a secret is being rotated).

An event is built once, and its raw body bytes are what gets stored and
re-sent: every attempt of one event carries the same id and the same body
(only t and v1 change), so receivers deduplicate on Delineate-Event-Id.
Delivery is at least once: a receiver that answered 2xx after the attempt's
deadline (CALLBACK_ATTEMPT_SECONDS, 10 s) sees the event again.

One delivery attempt (the HTTP POST) is chalicelib.webhooks.sender.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

EVENT_ID_HEADER = "Delineate-Event-Id"
SIGNATURE_HEADER = "Delineate-Signature"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_SQS_DELAY_SECONDS = 900  # the cap of both SQS DelaySeconds and ChangeMessageVisibility

EVENT_TYPES = {"completed": "job.completed", "failed": "job.failed", "cancelled": "job.cancelled"}

# uuid5 namespace for event ids: the id is a function of (job id, event type), so whoever
# builds the event (the worker that won the transition, a retry, a sweeper) gets the same one.
_EVENT_NAMESPACE = uuid.UUID("6f1d3c0e-5a8b-4f7e-9c2d-1b4a7e3f9d10")


# --- the event ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookEvent:
    """One event, with the exact bytes that are signed and sent on every attempt."""

    id: str
    type: str
    body: bytes

    @classmethod
    def from_body(cls, body: bytes) -> "WebhookEvent":
        """The event stored earlier as its raw body (a job item or a message holds only the bytes)."""
        document = json.loads(body)
        return cls(id=document["id"], type=document["type"], body=body)


def event_type_for(status: str) -> str:
    """job.completed / job.failed / job.cancelled for a terminal job status; ValueError otherwise."""
    value = str(getattr(status, "value", status))
    if value not in EVENT_TYPES:
        raise ValueError(f"no webhook event for job status {value!r}: only terminal states have one")
    return EVENT_TYPES[value]


def event_id_for(job_id: str, event_type: str) -> str:
    return "evt_" + uuid.uuid5(_EVENT_NAMESPACE, f"{job_id}/{event_type}").hex


def build_event(job_id: str, status: str, document: Mapping[str, Any], created_at: datetime) -> WebhookEvent:
    """The event for a job that reached terminal `status`; `created_at` is when it did (so rebuilding agrees)."""
    event_type = event_type_for(status)
    event_id = event_id_for(job_id, event_type)
    payload = {
        "type": event_type,
        "id": event_id,
        "createdAt": created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": dict(document),
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return WebhookEvent(event_id, event_type, body)


# --- signatures --------------------------------------------------------------------------------


class InvalidSignature(ValueError):
    """The Delineate-Signature header does not prove this body came from the service, recently."""


def key_of(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the signing secret must not be empty")
    return key


def compute_signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key_of(secret), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The Delineate-Signature header value: `t=<unix seconds>,v1=<hex>`."""
    return f"t={timestamp},{SIGNATURE_SCHEME}={compute_signature(secret, timestamp, body)}"


def verify_signature(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise InvalidSignature unless `header` signs the raw `body` with `secret` within `tolerance` seconds.

    `body` must be the bytes as received, before any JSON parsing. Timestamps
    further than `tolerance` from `now` in either direction are refused (a
    replay, or a clock far off). Any one matching v1 value is enough.
    """
    timestamp, signatures = _parse_signature_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("timestamp is outside the tolerance")
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no signature matches the body")


_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # ASCII digits only; far below int()'s 4,300-digit limit
_V1 = re.compile(r"[0-9a-f]{64}")  # hex of a SHA-256, lower case as sign() writes it
_MALFORMED = f"{SIGNATURE_HEADER} must hold t=<unix seconds> and {SIGNATURE_SCHEME}=<64 lower-case hex digits>"


def _parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """t and every v1 value; InvalidSignature for anything malformed, so a caller never sees another error
    (a non-ASCII v1 made hmac.compare_digest raise TypeError). Other schemes (v0, a future v2) are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in (header or "").split(","):
        name, _, value = item.strip(" \t").partition("=")
        if name == "t":
            if not _TIMESTAMP.fullmatch(value):
                raise InvalidSignature(_MALFORMED)
            timestamp = int(value)
        elif name == SIGNATURE_SCHEME:
            if not _V1.fullmatch(value):
                raise InvalidSignature(_MALFORMED)
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature(_MALFORMED)
    return timestamp, signatures


# --- the retry schedule ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrySchedule:
    """How long to wait after failed attempt n before attempt n+1.

    delay(n) = min(cap, base * 2**(n-1)), less up to `jitter` of itself, whole
    seconds (SQS DelaySeconds is an integer, at most 900).

    Cloud (CALLBACK_RETRY_BASE_SECONDS=90, CALLBACK_MAX_ATTEMPTS=8): after
    attempts 1..7 the delays are 90, 180, 360, 720, 900, 900, 900 s — 4,050 s
    (67.5 min) nominal and at least 3,652 s (> 1 hour) with the largest jitter,
    so the 8th and last attempt comes more than an hour after the first.
    Jitter only shortens a delay, so the cap holds and the span stays provable.

    Dev (base 1): 1, 2, 4, 8, 16, 32, 64 s — about two minutes in all.
    """

    max_attempts: int = 8
    base_seconds: int = 90
    cap_seconds: int = MAX_SQS_DELAY_SECONDS
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("CALLBACK_MAX_ATTEMPTS must be >= 1")
        if self.base_seconds < 0:
            raise ValueError("CALLBACK_RETRY_BASE_SECONDS must be >= 0")
        if not 0 <= self.cap_seconds <= MAX_SQS_DELAY_SECONDS:
            raise ValueError(f"the retry cap must be 0-{MAX_SQS_DELAY_SECONDS} s (the SQS delay limit)")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def nominal_delay(self, attempt: int) -> int:
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        return min(self.cap_seconds, self.base_seconds * 2 ** min(attempt - 1, 20))

    def delay_after(self, attempt: int, rng: Callable[[], float] = random.random) -> int:
        """Seconds to wait after failed attempt `attempt`; rng() in [0, 1) picks the jitter."""
        nominal = self.nominal_delay(attempt)
        return nominal - int(nominal * self.jitter * rng())

    def shortest_span(self) -> int:
        """The least time from the first attempt to the last, whatever the jitter."""
        return sum(
            self.nominal_delay(n) - int(self.nominal_delay(n) * self.jitter) for n in range(1, self.max_attempts)
        )
