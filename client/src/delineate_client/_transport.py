"""Retries, Retry-After and error mapping: the one place transport policy lives.

`send` (sync) and `send_async` share `RetryPolicy`, so both clients retry the
same answers the same way. A request is retried after a connection error, 429,
502, 503 or 504, and after 500 when it is idempotent (`retryable`), waiting what
the server's Retry-After asks (never less), else a doubling backoff. The caller
makes retries safe: initiate carries an Idempotency-Key that stays the same
across them.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import (
    ApiError,
    DelineateError,
    Forbidden,
    JobNotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE"})


def retryable(response: httpx.Response) -> bool:
    """429, 502, 503 and 504 always; 500 only for a request that is safe to repeat.

    429 and 503 say the request was not handled. A 500 from the gateway (API Gateway when the
    Lambda crashed or timed out) may come after the handler changed state, so repeating is safe only
    when a second copy has the same effect as one: GET, HEAD and DELETE (cancelling a cancelled job
    is a no-op), and a POST carrying an Idempotency-Key, which the service answers from the first.
    """
    status = response.status_code
    if status in RETRY_STATUSES:
        return True
    request = response.request
    idempotent = request.method in IDEMPOTENT_METHODS or (
        request.method == "POST" and "idempotency-key" in request.headers
    )
    return status == 500 and idempotent


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits grow from `base_delay` doubling up to `max_delay`.

    A Retry-After longer than `max_delay` ends the retries rather than being cut short.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def backoff(self, attempt: int) -> float:
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)

    def after_error(self, attempt: int) -> float | None:
        """Seconds to wait before another try after a connection error, or None to give up."""
        return self.backoff(attempt) if attempt < self.attempts else None

    def after_response(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before another try after this answer, or None to hand it to the caller."""
        if not retryable(response) or attempt >= self.attempts:
            return None
        asked = parse_retry_after(response.headers.get("retry-after"))
        if asked is None:
            return self.backoff(attempt)
        return asked if asked <= self.max_delay else None


def send(http: httpx.Client, method: str, url: str, policy: RetryPolicy, **kwargs: Any) -> httpx.Response:
    attempt = 0
    while True:
        attempt += 1
        try:
            response = http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            delay = policy.after_error(attempt)
            if delay is None:
                raise unreachable(http.base_url, exc) from exc
        else:
            delay = policy.after_response(response, attempt)
            if delay is None:
                return response
        time.sleep(delay)


async def send_async(
    http: httpx.AsyncClient, method: str, url: str, policy: RetryPolicy, **kwargs: Any
) -> httpx.Response:
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            delay = policy.after_error(attempt)
            if delay is None:
                raise unreachable(http.base_url, exc) from exc
        else:
            delay = policy.after_response(response, attempt)
            if delay is None:
                return response
        await asyncio.sleep(delay)


def unreachable(base_url: Any, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"cannot reach {base_url}: {type(exc).__name__}: {exc}")


def error_for(response: httpx.Response) -> DelineateError:
    """The typed error for a non-success answer of the API."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    message = message or f"HTTP {response.status_code}"
    request_id = response.headers.get("x-request-id")
    kwargs = {"status": response.status_code, "request_id": request_id}
    status = response.status_code
    if status == 401:
        return Unauthorized(message, body=body, **kwargs)
    if status == 403:
        return Forbidden(message, body=body, **kwargs)
    if status == 404:
        return JobNotFound(message, body=body, **kwargs)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimited(message, retry_after=retry_after, body=body, **kwargs)
    if status in RETRY_STATUSES or status >= 500:
        return ServiceUnavailable(f"service unavailable: {message}", **kwargs)
    return ApiError(message, body=body, **kwargs)
