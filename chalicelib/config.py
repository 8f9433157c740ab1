"""Settings: one frozen object built from the environment, with local defaults.

Names follow the original Delineate service where one existed
(DOWNLOAD_DELAY_*, S3_BUCKET_NAME, REQUEST_TIMEOUT_MS, RATE_LIMIT_*,
CORS_ORIGINS). The AWS endpoint is deliberately absent: boto3 reads the
standard AWS_ENDPOINT_URL itself, so the same code reaches AWS, LocalStack or
the embedded emulator without a branch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Callable, Mapping


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"expected a boolean, got {raw!r}")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise SettingsError(f"expected an integer >= 1, got {raw!r}")
    return value


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


AUTH_MODES = ("none", "api-key")
MAX_API_KEY_CACHE_SECONDS = 60
MAX_CALLBACK_DELAY_SECONDS = 900
# A webhook attempt holds a worker that file work shares; past a minute that is the review's finding again.
MAX_CALLBACK_ATTEMPT_SECONDS = 60
MAX_VISIBILITY_SECONDS = 43200  # the longest ChangeMessageVisibility accepts
MAX_LONG_POLL_SECONDS = 20  # a held API request: well under API Gateway REST's 29 s integration timeout
MAX_PRESIGN_SECONDS = 604800  # SigV4 presigned URLs live at most 7 days (S3 API reference, "Authenticating Requests")
MAX_BODY_LIMIT = 10 * 1024 * 1024  # API Gateway REST's payload quota is 10 MB: a larger limit never applies


def _base_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if value and not value.startswith(("https://", "http://")):
        raise SettingsError(f"expected an absolute http(s) URL or nothing, got {raw!r}")
    return value


def _auth_mode(raw: str) -> str:
    value = raw.strip().lower()
    if value not in AUTH_MODES:
        raise SettingsError(f"expected one of {', '.join(AUTH_MODES)}, got {raw!r}")
    return value


# env name -> (field, parser, default). Defaults are the local-development ones.
_SPEC: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "JOBS_TABLE_NAME": ("jobs_table", str, "delineate-jobs"),
    "WORK_QUEUE_URL": ("work_queue_url", str, ""),
    "DEAD_LETTER_QUEUE_URL": ("dead_letter_queue_url", str, ""),
    "S3_BUCKET_NAME": ("bucket", str, "delineate-storage"),
    "MAX_RECEIVE_COUNT": ("max_receive_count", int, "5"),
    "DOWNLOAD_DELAY_ENABLED": ("delay_enabled", _bool, "true"),
    "DOWNLOAD_DELAY_MIN_MS": ("delay_min_ms", int, "10000"),
    "DOWNLOAD_DELAY_MAX_MS": ("delay_max_ms", int, "200000"),
    "PRESIGN_EXPIRY_SECONDS": ("presign_expiry_seconds", int, "900"),
    "JOB_TTL_SECONDS": ("job_ttl_seconds", int, "86400"),
    "WORKER_CONCURRENCY": ("worker_concurrency", int, "4"),
    # 0: as many as WORKER_CONCURRENCY, so one job alone still keeps every worker busy.
    "JOB_MAX_IN_FLIGHT": ("job_max_in_flight", int, "0"),
    "RETRY_BASE_SECONDS": ("retry_base_seconds", float, "1"),
    "RETRY_MAX_SECONDS": ("retry_max_seconds", float, "60"),
    "STATUS_RETRY_AFTER_SECONDS": ("status_retry_after_seconds", int, "2"),
    # How long a status long-poll (`Prefer: wait`) or one SSE response may hold an API
    # invocation. A held request is a Lambda per waiting client, so the prod stage keeps it 0.
    "LONG_POLL_MAX_SECONDS": ("long_poll_max_seconds", int, str(MAX_LONG_POLL_SECONDS)),
    "REQUEST_TIMEOUT_MS": ("request_timeout_ms", int, "30000"),
    "START_WAIT_MS": ("start_wait_ms", int, "20000"),
    "MAX_BODY_BYTES": ("max_body_bytes", int, "65536"),
    "STALLED_JOB_SECONDS": ("stalled_job_seconds", int, "900"),
    "MAX_JOB_RESUMES": ("max_job_resumes", int, "3"),
    "BUNDLE_LEASE_SECONDS": ("bundle_lease_seconds", int, "900"),
    # A job's result is split into zips ("volumes") of at most this many bytes, as Google
    # Takeout does (1, 2, 4, 10 or 50 GB); a file larger than that gets a volume of its own.
    "BUNDLE_MAX_BYTES": ("bundle_max_bytes", _positive_int, str(4 * 1024**3)),
    "RATE_LIMIT_ENABLED": ("rate_limit_enabled", _bool, "true"),
    "RATE_LIMIT_WINDOW_MS": ("rate_limit_window_ms", int, "60000"),
    "RATE_LIMIT_MAX_REQUESTS": ("rate_limit_max_requests", int, "100"),
    "CORS_ORIGINS": ("cors_origins", _csv, "*"),
    "SERVICE_VERSION": ("version", str, "1.0.0"),
    # `none` by default, so `make dev`, the curl walkthrough and the original service's
    # clients keep working; a cloud stage overrides it with `api-key` in .chalice/config.json.
    "AUTH_MODE": ("auth_mode", _auth_mode, "none"),
    "API_KEY_CACHE_SECONDS": ("api_key_cache_seconds", int, "30"),
    # Webhooks (chalicelib/jobs/callbacks.py). The secret itself: `make dev` generates one;
    # the cloud worker reads it at cold start from the Secrets Manager ARN instead.
    "CALLBACK_SIGNING_SECRET": ("callback_signing_secret", str, ""),
    "CALLBACK_SIGNING_SECRET_ARN": ("callback_signing_secret_arn", str, ""),
    # Safe by default: only `make dev` lets callbacks reach loopback and private hosts.
    "CALLBACK_ALLOW_PRIVATE": ("callback_allow_private", _bool, "false"),
    # 8 attempts from a 90 s base span more than an hour (webhooks.RetrySchedule).
    "CALLBACK_MAX_ATTEMPTS": ("callback_max_attempts", int, "8"),
    "CALLBACK_RETRY_BASE_SECONDS": ("callback_retry_base_seconds", int, "90"),
    # One attempt's wall-clock deadline, connect to status line and headers (webhooks/exchange.py).
    "CALLBACK_ATTEMPT_SECONDS": ("callback_attempt_seconds", float, "10"),
    # The API's public address (https://api.example.com); webhook events then carry an absolute statusUrl.
    "PUBLIC_BASE_URL": ("public_base_url", _base_url, ""),
}


# env name -> (lowest, highest or None, why): a value outside is refused at start, naming the
# variable, instead of failing every request later (a zero window divided by zero: 500s).
_BOUNDS: dict[str, tuple[int, int | None, str]] = {
    "MAX_RECEIVE_COUNT": (1, None, ""),
    "WORKER_CONCURRENCY": (1, None, ""),
    "JOB_MAX_IN_FLIGHT": (0, None, "0: WORKER_CONCURRENCY"),
    "PRESIGN_EXPIRY_SECONDS": (1, MAX_PRESIGN_SECONDS, "SigV4's 7 days"),
    "JOB_TTL_SECONDS": (1, None, ""),
    "STATUS_RETRY_AFTER_SECONDS": (0, None, ""),
    "LONG_POLL_MAX_SECONDS": (0, MAX_LONG_POLL_SECONDS, "0: answer at once with Retry-After"),
    "REQUEST_TIMEOUT_MS": (1, None, ""),
    "START_WAIT_MS": (0, None, ""),
    "MAX_BODY_BYTES": (1, MAX_BODY_LIMIT, "API Gateway's 10 MB payload quota"),
    "STALLED_JOB_SECONDS": (0, None, ""),
    "MAX_JOB_RESUMES": (0, None, ""),
    "BUNDLE_LEASE_SECONDS": (1, None, ""),
    # RateLimit-Reset counts whole seconds, so a window is at least one; 0 would divide by zero.
    "RATE_LIMIT_WINDOW_MS": (1000, None, "one second"),
    "RATE_LIMIT_MAX_REQUESTS": (1, None, "0 would refuse every request"),
    # A revoked key must stop working within a minute; the cache is what delays it.
    "API_KEY_CACHE_SECONDS": (0, MAX_API_KEY_CACHE_SECONDS, ""),
    "CALLBACK_MAX_ATTEMPTS": (1, None, ""),
    # Each retry is one delayed SQS message, and SQS delays at most 900 s.
    "CALLBACK_RETRY_BASE_SECONDS": (0, MAX_CALLBACK_DELAY_SECONDS, ""),
}


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    work_queue_url: str
    dead_letter_queue_url: str
    bucket: str
    max_receive_count: int
    delay_enabled: bool
    delay_min_ms: int
    delay_max_ms: int
    presign_expiry_seconds: int
    job_ttl_seconds: int
    worker_concurrency: int
    job_max_in_flight: int
    retry_base_seconds: float
    retry_max_seconds: float
    status_retry_after_seconds: int
    long_poll_max_seconds: int
    request_timeout_ms: int
    start_wait_ms: int
    max_body_bytes: int
    stalled_job_seconds: int
    max_job_resumes: int
    bundle_lease_seconds: int
    bundle_max_bytes: int
    rate_limit_enabled: bool
    rate_limit_window_ms: int
    rate_limit_max_requests: int
    cors_origins: tuple[str, ...]
    version: str
    auth_mode: str
    api_key_cache_seconds: int
    callback_signing_secret: str
    callback_signing_secret_arn: str
    callback_allow_private: bool
    callback_max_attempts: int
    callback_retry_base_seconds: int
    callback_attempt_seconds: float
    public_base_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for name, (field, parse, default) in _SPEC.items():
            raw = environ.get(name, default)
            try:
                values[field] = parse(raw)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{name}: {exc}") from exc
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        for name, (lowest, highest, why) in _BOUNDS.items():
            value = getattr(self, _SPEC[name][0])
            if value < lowest or (highest is not None and value > highest):
                bound = f">= {lowest}" if highest is None else f"between {lowest} and {highest}"
                raise SettingsError(f"{name} must be {bound}" + (f" ({why})" if why else ""))
        if self.delay_min_ms < 0 or self.delay_max_ms < self.delay_min_ms:
            raise SettingsError("DOWNLOAD_DELAY_MIN_MS must be >= 0 and <= DOWNLOAD_DELAY_MAX_MS")
        if not 0 <= self.retry_base_seconds <= self.retry_max_seconds <= MAX_VISIBILITY_SECONDS:
            raise SettingsError(
                f"need 0 <= RETRY_BASE_SECONDS <= RETRY_MAX_SECONDS <= {MAX_VISIBILITY_SECONDS} (SQS's 12 hours)"
            )
        if not 0 < self.callback_attempt_seconds <= MAX_CALLBACK_ATTEMPT_SECONDS:
            raise SettingsError(f"CALLBACK_ATTEMPT_SECONDS must be above 0 and at most {MAX_CALLBACK_ATTEMPT_SECONDS}")

    @property
    def auth_required(self) -> bool:
        return self.auth_mode == "api-key"

    @property
    def job_window(self) -> int:
        """File messages one job may have queued or in flight (jobs/scheduling.py)."""
        return self.job_max_in_flight or self.worker_concurrency

    @property
    def max_delay_seconds(self) -> float:
        return self.delay_max_ms / 1000 if self.delay_enabled else 0.0


ENV_NAMES = tuple(_SPEC)
assert {spec[0] for spec in _SPEC.values()} == {f.name for f in fields(Settings)}
assert set(_BOUNDS) <= set(_SPEC)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once (a Lambda container or a local process)."""
    return Settings.from_env()
