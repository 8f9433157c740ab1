"""Typed errors. Every error the library raises is a DelineateError."""

from __future__ import annotations

from typing import Any


class DelineateError(Exception):
    """Base class. `status` is the HTTP status when one was received, `request_id` the server's X-Request-ID."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id


class ApiError(DelineateError):
    """An error answer the library has no more specific type for (e.g. 400, 409)."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None, body: Any = None):
        super().__init__(message, status=status, request_id=request_id)
        self.body = body


class Unauthorized(ApiError):
    """401: the API key is missing or wrong."""


class Forbidden(ApiError):
    """403: the key may not do this, or the server runs without keys (e.g. listing jobs)."""


class JobNotFound(ApiError):
    """404: no such job (never created, or expired)."""


class RateLimited(ApiError):
    """429 still answered after the retries; `retry_after` is the server's last Retry-After in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailable(DelineateError):
    """The service could not be reached, or answered 502/503/504, after the retries."""


class JobError(DelineateError):
    """The job ended without a bundle to download. `job` is its last status document."""

    def __init__(self, message: str, job: dict) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(JobError):
    """The job ended `failed`; the server's reason is in `message`."""


class JobCancelled(JobError):
    """The job was cancelled."""


class NothingAvailable(JobError):
    """The job completed but none of the requested files was available, so there is no bundle."""


class InvalidToken(DelineateError, ValueError):
    """A job token or job id the client will not use: malformed, not a UUID, or naming another service
    than the client's (the API key goes only to the base URL the caller chose)."""


class UnexpectedResponse(DelineateError):
    """The service's answer holds a value the client will not act on, e.g. a file id that is not an integer."""


class IntegrityError(DelineateError):
    """The downloaded bytes do not match the size or SHA-256 the status document announced."""


class WebhookVerificationError(DelineateError):
    """A webhook's signature is missing, malformed, stale or wrong."""


class SeveralBundles(DelineateError):
    """`download()` on a job the service split into several zips (volumes): use `download_bundles()`."""
