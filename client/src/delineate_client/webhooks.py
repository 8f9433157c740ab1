"""Checks a webhook's `Delineate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from .errors import WebhookVerificationError

SIGNATURE_HEADER = "delineate-signature"
# What the service writes; anything else is malformed. re.ASCII and fullmatch: no other digits, no trailing newline.
TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
V1_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def verify_webhook(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: float = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """Returns the event (the parsed JSON body) when one `v1=` signature matches and `t` is within `tolerance`
    seconds of now; raises WebhookVerificationError otherwise. Pass the raw body, exactly as received.

    Deduplicate deliveries by the event's `id`, which is inside the signed body (also returned as
    `_eventId`); the `Delineate-Event-Id` header carries the same value but is not signed, so anyone on
    the path can change it and make one event look like many.
    """
    timestamp, signatures = _signature(_header(headers, SIGNATURE_HEADER))
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise WebhookVerificationError(f"signature timestamp {timestamp} is outside the {tolerance} s tolerance")
    key = secret.encode() if isinstance(secret, str) else secret
    raw = body.encode() if isinstance(body, str) else bytes(body)
    expected = hmac.new(key, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookVerificationError("no signature matches")
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("the signed body is not JSON") from exc
    if isinstance(event, dict):
        event["_eventId"] = event.get("id")  # the signed id, never the unsigned header
    return event


def _signature(header: str | None) -> tuple[str, list[str]]:
    """(t, the v1 signatures) of a `Delineate-Signature` header; WebhookVerificationError unless `t` is
    ASCII digits and every `v1` is 64 lower-case hex digits, so nothing later can raise another error."""
    if not header:
        raise WebhookVerificationError("no Delineate-Signature header")
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not TIMESTAMP.fullmatch(timestamp) or not signatures:
        raise WebhookVerificationError("malformed Delineate-Signature header")
    if not all(V1_SIGNATURE.fullmatch(signature) for signature in signatures):
        raise WebhookVerificationError("malformed Delineate-Signature header: v1 must be 64 lower-case hex digits")
    return timestamp, signatures
