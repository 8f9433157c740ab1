"""HTTP concerns shared by every route: request ids, headers, error shape, responses.

This module sits below the wiring: app.py hands the middleware its settings,
rate limiter and authenticator as providers (called per request, so tests can
swap them).

With AUTH_MODE=api-key every route but PUBLIC_PATHS (and CORS preflights)
needs a key (chalicelib/api/auth.py says why here rather than in an API Gateway
authorizer). The key found is put in the request's context under CALLER, as
API Gateway puts an authorizer's principal in `requestContext.authorizer`;
routes read it with `caller(request)`. The rate limit then counts per key, at
the key's own --rate-limit when it has one, and per client address otherwise.
The address comes first: one this instance knows is over its limit is refused
before any key lookup, so a flood (of guessed keys, say) costs no consistent
GetItem each and cannot push real keys out of the Authenticator's cache.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from chalice import CORSConfig, Response

from chalicelib.api.auth import Authenticator
from chalicelib.api.ratelimit import Decision, RateLimiter, client_key
from chalicelib.aws import tracing
from chalicelib.config import Settings
from chalicelib.errors import ApiError, Conflict, NotFound, Unauthorized, error_body, error_title
from chalicelib.keys.store import ApiKey
from chalicelib.models import JobStatus

log = logging.getLogger("delineate.http")

CATCH_ALL_DEPTH = 12
REQUEST_ID_HEADER = "X-Request-ID"
EXPOSED_HEADERS = [
    REQUEST_ID_HEADER,
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "ETag",
    "Preference-Applied",
    "WWW-Authenticate",
]
# Routes open without a key: the service's description, its health and its page
# (which sends the key the user types from the browser).
PUBLIC_PATHS = frozenset({"/", "/health", "/openapi.json", "/docs", "/app"})
CALLER = "delineate.caller"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
}
_MAX_REQUEST_ID = 128


Middleware = Callable[[Any, Callable[[Any], Response]], Response]


ALLOWED_HEADERS = [
    "Content-Type",
    "Idempotency-Key",
    REQUEST_ID_HEADER,
    "Authorization",
    "X-API-Key",
    "If-None-Match",
    "Prefer",
    "Last-Event-ID",
]
PREFLIGHT_MAX_AGE = 600


def _origin_list(origins: Sequence[str]) -> bool:
    """More than one origin and no `*`: each request's Origin must be checked."""
    return len(origins) > 1 and "*" not in origins


def cors_config(origins: Sequence[str]) -> CORSConfig | bool:
    """Chalice's CORS (API Gateway answers preflights itself) for `*` or one origin.

    For a list, False (no Chalice CORS): Chalice's generated preflight, in API Gateway and in
    `chalice local`, can name only one fixed origin, so add_preflight_routes
    answers preflights instead and the middleware echoes an allowed Origin.
    """
    if _origin_list(origins):
        return False
    return CORSConfig(
        allow_origin=origins[0] if len(origins) == 1 else "*",
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE,
    )


def add_preflight_routes(app: Any, origins: Sequence[str]) -> None:
    """With a list of origins, an explicit OPTIONS route per path (call after every route is defined).

    Chalice routes a user-defined OPTIONS method to the app instead of
    answering it, so the middleware sees preflights and adds the origin only
    when it is listed."""
    if not _origin_list(origins):
        return
    for index, (path, methods) in enumerate(list(app.routes.items())):
        if "OPTIONS" not in methods:
            allowed = ",".join(sorted(methods) + ["OPTIONS"])
            app.route(path, methods=["OPTIONS"], name=f"preflight_{index}")(_preflight(allowed))


def _preflight(allowed_methods: str) -> Callable[..., Response]:
    def preflight(**_path: str) -> Response:
        headers: dict[str, str | list[str]] = {
            "Access-Control-Allow-Methods": allowed_methods,
            "Access-Control-Allow-Headers": ",".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE),
        }
        return Response(body="", status_code=200, headers=headers)

    return preflight


def request_id_for(headers: Any) -> str:
    supplied = (headers or {}).get("x-request-id", "")
    if supplied and len(supplied) <= _MAX_REQUEST_ID and supplied.isprintable():
        return supplied
    return str(uuid.uuid4())


def _allowed_origin(origin: str | None, origins: Sequence[str]) -> str | None:
    if "*" in origins:
        return "*"
    if origin and origin in origins:
        return origin
    return None


def _reshape_error(response: Response, request_id: str) -> None:
    """Every 4xx/5xx leaves in the DESIGN.md shape, whoever produced it (us or Chalice)."""
    body = response.body
    built_by_route = isinstance(body, dict) and "Code" not in body
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            body = {"message": body if isinstance(body, str) else ""}
    if not isinstance(body, dict):
        body = {}
    if "error" in body and "message" in body:
        body["requestId"] = request_id
        response.body = body
        return
    if built_by_route and body:
        # A route's own document for this status, e.g. /health's 503 report
        # (DESIGN.md: "unhealthy" and the failing check "error"): left as built.
        # Chalice's errors, and ours raised as ChaliceViewError, carry "Code".
        return
    message = body.get("Message") or body.get("message") or error_title(response.status_code)
    if response.status_code >= 500 and response.status_code not in (503, 504):
        message = "An internal error occurred"  # never leak internals
    response.body = error_body(response.status_code, message, request_id)


def _client_id(event: Any) -> str:
    """API Gateway's sourceIp (set by the gateway, unlike X-Forwarded-For which clients control), per /64 for IPv6."""
    return client_key(str((event.context or {}).get("identity", {}).get("sourceIp") or "unknown"))


def caller(request: Any) -> ApiKey | None:
    """The API key the middleware accepted for this request; None when AUTH_MODE=none."""
    return (request.context or {}).get(CALLER)


def _identify(event: Any, required: bool, authenticator: Callable[[], Authenticator]) -> ApiKey | None:
    """The request's API key when one is required; raises Unauthorized (401) or DependencyUnavailable."""
    if event.context is None:
        event.context = {}
    event.context.pop(CALLER, None)  # only ever set here, never carried in from outside
    if not required or event.method == "OPTIONS" or event.path in PUBLIC_PATHS:
        return None
    key = authenticator().authenticate(event.headers or {})
    event.context[CALLER] = key
    return key


def _rate_limit(
    event: Any, enabled: bool, rate_limiter: Callable[[], RateLimiter], key: ApiKey | None = None
) -> Decision | None:
    if not enabled or event.method == "OPTIONS":
        return None
    limiter = rate_limiter()
    limit = key.rate_limit if key is not None else None
    try:
        return limiter.hit(f"key:{key.key_id}" if key is not None else _client_id(event), limit)
    except (BotoCoreError, ClientError) as exc:
        # Fail open: a limiter outage must not take the API down with it.
        log.warning("rate limiter unavailable", extra={"error": type(exc).__name__})
        return limiter.unknown(limit)


def _admit(
    event: Any,
    current: Settings,
    rate_limiter: Callable[[], RateLimiter],
    authenticator: Callable[[], Authenticator],
) -> tuple[Response | None, Decision | None]:
    """Who may ask, and how often: (a refusal or None, the rate-limit decision).

    A request the key check refuses still counts against its address, so a
    client guessing keys meets the rate limit like any other, then is refused unread.
    """
    if current.rate_limit_enabled and event.method != "OPTIONS":
        known = rate_limiter().refusal(_client_id(event))
        if known is not None:
            return _too_many_requests(known), known
    refusal: ApiError | None = None
    try:
        key = _identify(event, current.auth_required, authenticator)
    except ApiError as error:  # Unauthorized, or the key table unreachable (503)
        key, refusal = None, error
    decision = _rate_limit(event, current.rate_limit_enabled, rate_limiter, key)
    if decision is not None and not decision.allowed:
        return _too_many_requests(decision), decision
    if refusal is not None:
        headers: dict[str, str | list[str]] = (
            {"WWW-Authenticate": Unauthorized.CHALLENGE} if isinstance(refusal, Unauthorized) else {}
        )
        body = {"error": error_title(refusal.STATUS_CODE), "message": str(refusal)}
        return Response(body=body, status_code=refusal.STATUS_CODE, headers=headers), decision
    return None, decision


def api_middleware(
    settings: Callable[[], Settings],
    rate_limiter: Callable[[], RateLimiter],
    authenticator: Callable[[], Authenticator],
) -> Middleware:
    """The middleware every HTTP request passes: request id, trace, key, rate limit, error shape, headers, log line."""

    def middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
        started = time.monotonic()
        current = settings()
        headers_in = event.headers or {}
        request_id = request_id_for(headers_in)
        path = (event.context or {}).get("path") or event.path
        with tracing.traced(
            "delineate-api", headers_in.get("x-amzn-trace-id"), requestId=request_id, method=event.method, path=path
        ):
            refusal, decision = _admit(event, current, rate_limiter, authenticator)
            response = refusal or _respond(event, get_response)
        if response.status_code >= 400:
            _reshape_error(response, request_id)
        if response.status_code == 429:  # a key's max active jobs: a slot frees as a job ends, poll-paced
            response.headers.setdefault("Retry-After", str(current.status_retry_after_seconds))
        _add_headers(response, request_id, decision, _allowed_origin(headers_in.get("origin"), current.cors_origins))
        if _origin_list(current.cors_origins):  # the answer depends on Origin, allowed or not
            response.headers["Vary"] = "Origin"
        fields = {
            "requestId": request_id,
            "method": event.method,
            "path": path,
            "status": response.status_code,
            "durationMs": round((time.monotonic() - started) * 1000, 1),
        }
        log.log(logging.ERROR if response.status_code >= 500 else logging.INFO, "request", extra=fields)
        return response

    return middleware


def _respond(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """The route's answer; a Conflict (which Chalice lets through) answers 409 with its document."""
    try:
        return get_response(event)
    except Conflict as conflict:
        return Response(body=conflict.body(), status_code=Conflict.STATUS_CODE)


def _too_many_requests(decision: Decision) -> Response:
    return Response(
        body={"error": error_title(429), "message": "rate limit exceeded; retry after the reset"},
        status_code=429,
        headers={"Retry-After": str(decision.reset_seconds)},
    )


def _add_headers(response: Response, request_id: str, decision: Decision | None, origin: str | None) -> None:
    headers = response.headers
    headers[REQUEST_ID_HEADER] = request_id
    headers.update(SECURITY_HEADERS)
    if decision is not None:
        headers.update(decision.headers())
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = ",".join(EXPOSED_HEADERS)
        if origin != "*":
            headers["Vary"] = "Origin"


def accepted(document: dict, created: bool) -> Response:
    """202 for a new job; 200 when an Idempotency-Key replay returns the existing one. Location: its status."""
    return Response(body=document, status_code=202 if created else 200, headers={"Location": document["statusUrl"]})


def status_response(document: dict, retry_after_seconds: int) -> Response:
    """Retry-After while the job still runs, so clients poll at the pace the service suggests."""
    headers: dict[str, str | list[str]] = {"Cache-Control": "no-store"}
    if not JobStatus(document["status"]).terminal:
        headers["Retry-After"] = str(retry_after_seconds)
    return Response(body=document, status_code=200, headers=headers)


def listing_response(document: dict) -> Response:
    """A page of jobs changes with every job and carries presigned URLs: never cached."""
    return Response(body=document, status_code=200, headers={"Cache-Control": "no-store"})


def redirect(url: str) -> Response:
    return Response(body="", status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


def not_found(**_path: str) -> Response:
    raise NotFound("no route matches this path")
