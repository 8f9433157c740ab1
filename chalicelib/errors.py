"""Error types and the one place that turns them into the DESIGN.md error shape.

Domain errors subclass Chalice's ChaliceViewError so Chalice itself answers with
their status code; the HTTP middleware (chalicelib.api.http) then rewrites every
error response, ours and Chalice's own (bad JSON, 405, 415, 500), into
`{"error", "message", "requestId"}`. A Conflict carries the job's status
document as well, which Chalice's own error response would drop: it passes
Chalice by (ChaliceUnhandledError) and the middleware answers it with `body()`.
"""

from __future__ import annotations

from http import HTTPStatus

from chalice import ChaliceUnhandledError, ChaliceViewError


class ApiError(ChaliceViewError):
    STATUS_CODE = 500


class ValidationError(ApiError):
    STATUS_CODE = 400


class Unauthorized(ApiError):
    """401: no API key, or one that is malformed, unknown or revoked.

    RFC 9110 section 11.6.1: a 401 carries a WWW-Authenticate challenge; the layer
    that answers (middleware or gateway response) sends CHALLENGE with it.
    """

    STATUS_CODE = 401
    CHALLENGE = 'Bearer realm="delineate"'


class Forbidden(ApiError):
    """403: the caller is known (or none is needed) but the operation is not open to it."""

    STATUS_CODE = 403


class NotFound(ApiError):
    STATUS_CODE = 404


class Conflict(ApiError, ChaliceUnhandledError):
    """409; `document` is the job's status document, sent along so clients need not re-poll."""

    STATUS_CODE = 409

    def __init__(self, message: str, document: dict | None = None) -> None:
        super().__init__(message)
        self.document = document

    def body(self) -> dict:
        """The status document with the error shape's fields (the middleware adds requestId)."""
        return {**(self.document or {}), "error": error_title(self.STATUS_CODE), "message": str(self)}


class PayloadTooLarge(ApiError):
    STATUS_CODE = 413


class IdempotencyKeyReused(ApiError):
    """Same Idempotency-Key, different body (IETF httpapi idempotency draft: 422)."""

    STATUS_CODE = 422


class RateLimited(ApiError):
    STATUS_CODE = 429


class DependencyUnavailable(ApiError):
    """An AWS dependency (table, queue, bucket) could not be reached or refused."""

    STATUS_CODE = 503

    def __init__(self, dependency: str, detail: str = "") -> None:
        self.dependency = dependency
        message = f"{dependency} is unavailable"
        super().__init__(f"{message}: {detail}" if detail else message)


class GatewayTimeout(ApiError):
    STATUS_CODE = 504


def error_title(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def error_body(status_code: int, message: str, request_id: str) -> dict:
    return {"error": error_title(status_code), "message": message, "requestId": request_id}
