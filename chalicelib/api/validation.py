"""Request parsing: raw request parts in, typed values or a ValidationError out."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Mapping

from chalicelib.errors import PayloadTooLarge, ValidationError
from chalicelib.models import InitiateRequest, JobStatus

MIN_FILE_ID = 10_000
MAX_FILE_ID = 100_000_000
MAX_FILES_PER_JOB = 1_000
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_CALLBACK_URL_LENGTH = 2048
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 1024
_PAGE_SIZE = re.compile(r"^[0-9]{1,3}$")  # ASCII digits only: str.isdigit() also accepts "²"


INITIATE_FIELDS = ("file_ids", "callbackUrl")
SINGLE_FILE_FIELDS = ("file_id",)
MAX_SHOWN_FIELD = 64  # an unknown field's name is echoed in the 400, cut to this


def parse_json_object(raw_body: str | bytes | None, max_bytes: int, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The body as a JSON object with no field but `allowed`.

    An unknown field is refused rather than dropped: a client that spells one
    differently (`callback_url` for `callbackUrl`) would otherwise get a 202
    and silently lose what it asked for.
    """
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body or b""  # the limit is in bytes
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body: must be at most {max_bytes} bytes")
    if not body.strip():
        raise ValidationError("body: must be a JSON object")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("body: must be valid JSON") from None
    except RecursionError:
        # A few KB of `[[[[...` exhausts the parser's stack well under MAX_BODY_BYTES.
        raise ValidationError("body: JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValidationError("body: must be a JSON object")
    unknown = [name for name in value if name not in allowed]
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= MAX_SHOWN_FIELD else unknown[0][:MAX_SHOWN_FIELD] + "..."
        raise ValidationError(f"{shown}: unknown field (allowed: {', '.join(allowed)})")
    return value


def _file_id(value: Any, where: str) -> int:
    # bool is an int subclass in Python; JSON true must not become file 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{where}: must be an integer")
    if value < MIN_FILE_ID:
        raise ValidationError(f"{where}: must be >= {MIN_FILE_ID}")
    if value > MAX_FILE_ID:
        raise ValidationError(f"{where}: must be <= {MAX_FILE_ID}")
    return value


def parse_file_ids(body: dict[str, Any]) -> tuple[int, ...]:
    if "file_ids" not in body:
        raise ValidationError("file_ids: is required")
    raw = body["file_ids"]
    if not isinstance(raw, list):
        raise ValidationError("file_ids: must be an array of integers")
    if not raw:
        raise ValidationError("file_ids: must contain at least 1 item")
    if len(raw) > MAX_FILES_PER_JOB:
        raise ValidationError(f"file_ids: must contain at most {MAX_FILES_PER_JOB} items")
    ids = [_file_id(value, f"file_ids[{index}]") for index, value in enumerate(raw)]
    return tuple(dict.fromkeys(ids))  # collapse duplicates, keep first-seen order


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValidationError(f"Idempotency-Key: must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters")
    return key


def parse_callback_url(body: dict[str, Any]) -> str | None:
    """The optional callbackUrl's shape only: whether the service may call it is
    decided at initiate (chalicelib.webhooks.urls), with the deployment's policy."""
    value = body.get("callbackUrl")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError("callbackUrl: must be a non-empty string")
    if len(value) > MAX_CALLBACK_URL_LENGTH:
        raise ValidationError(f"callbackUrl: must be at most {MAX_CALLBACK_URL_LENGTH} characters")
    return value


def parse_initiate(raw_body: str | bytes | None, idempotency_key: str | None, max_bytes: int) -> InitiateRequest:
    body = parse_json_object(raw_body, max_bytes, INITIATE_FIELDS)
    return InitiateRequest(parse_file_ids(body), parse_idempotency_key(idempotency_key), parse_callback_url(body))


def parse_single_file(raw_body: str | bytes | None, max_bytes: int) -> int:
    body = parse_json_object(raw_body, max_bytes, SINGLE_FILE_FIELDS)
    if "file_id" not in body:
        raise ValidationError("file_id: is required")
    return _file_id(body["file_id"], "file_id")


def parse_job_id(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise ValidationError("jobId: must be a UUID") from None
    if str(parsed) != value.lower():
        raise ValidationError("jobId: must be a UUID")
    return str(parsed)


def parse_include(value: str | None) -> bool:
    """`?include=files` is the only supported expansion."""
    if value is None:
        return False
    parts = {part.strip() for part in value.split(",") if part.strip()}
    unknown = parts - {"files"}
    if unknown:
        raise ValidationError(f"include: unsupported value {sorted(unknown)[0]!r} (allowed: files)")
    return "files" in parts


_VOLUME = re.compile(r"^[0-9]{1,4}$")


def parse_volume(value: str | None) -> int | None:
    """`?volume=N` of the download redirect: which zip of a job split into volumes, from 1."""
    if value is None:
        return None
    if not _VOLUME.match(value) or int(value) < 1:
        raise ValidationError("volume: must be an integer >= 1 (the first volume is 1)")
    return int(value)


def parse_list_query(query: Mapping[str, str] | None) -> tuple[int, str | None, str | None]:
    """`?status=&limit=&cursor=` of the job listing: (limit, cursor, status).

    The cursor is only bounded here; jobs/owners.py checks that it is one the
    listing handed to this caller."""
    query = query or {}
    raw_limit = query.get("limit", str(DEFAULT_PAGE_SIZE))
    if not _PAGE_SIZE.match(raw_limit) or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise ValidationError(f"limit: must be an integer from 1 to {MAX_PAGE_SIZE}")
    cursor = query.get("cursor")
    if cursor is not None and not 0 < len(cursor) <= MAX_CURSOR_LENGTH:
        raise ValidationError(f"cursor: must be 1-{MAX_CURSOR_LENGTH} characters")
    status = query.get("status")
    if status is not None and status not in {value.value for value in JobStatus}:
        allowed = ", ".join(value.value for value in JobStatus)
        raise ValidationError(f"status: must be one of {allowed}")
    return int(raw_limit), cursor, status
