"""One delivery attempt of a signed webhook event (chalicelib.webhooks.events): POST it, say what to do next.

Each attempt re-checks the URL with the SSRF policy of chalicelib.webhooks.urls
(DNS may have changed since initiate) and connects to an address that check
accepted, sending the host name in the Host header and as TLS SNI, with the
certificate verified for that name. Redirects are not followed.

The 5 s timeouts are per connect and per socket read (urllib3's semantics): a
receiver that trickles its status line byte by byte can hold an attempt for
longer, bounded by the worker's own (Lambda) timeout. The response body is
never read.
"""

from __future__ import annotations

import enum
import random
import time
from dataclasses import dataclass
from typing import Callable

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from chalicelib.webhooks.events import EVENT_ID_HEADER, SIGNATURE_HEADER, RetrySchedule, WebhookEvent, key_of, sign
from chalicelib.webhooks.urls import (
    CallbackHostUnresolved,
    CallbackUrl,
    CallbackUrlRefused,
    IPAddress,
    Resolver,
    check_callback_url,
)

DELIVERY_TIMEOUT_SECONDS = 5.0
MAX_ADDRESSES_TRIED = 3
MAX_ERROR_LENGTH = 200
USER_AGENT = "Delineate-Webhooks/1"


# --- one delivery attempt ----------------------------------------------------------------------


class DeliveryOutcome(str, enum.Enum):
    DELIVERED = "delivered"  # the receiver answered 2xx
    RETRY = "retry"  # failed; send attempt + 1 after `retry_in_seconds`
    GAVE_UP = "gave_up"  # failed for the last time, or the URL is now refused


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    attempt: int
    status_code: int | None = None
    last_error: str | None = None  # short, for the job's record; never a secret or a response body
    retry_in_seconds: int | None = None


@dataclass(frozen=True)
class _Answer:
    status: int | None
    error: str | None
    connected: bool  # False: this address could not be reached, another may be tried


class WebhookSender:
    """Delivers one attempt of one event; the caller (the queue worker) schedules the next from the result."""

    def __init__(
        self,
        secret: str | bytes,
        *,
        allow_private: bool,
        schedule: RetrySchedule | None = None,
        resolve: Resolver | None = None,
        timeout_seconds: float = DELIVERY_TIMEOUT_SECONDS,
        ca_certs: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        key_of(secret)  # an empty secret is a configuration error, found before the first event
        self._secret = secret
        self._allow_private = allow_private
        self._schedule = schedule or RetrySchedule()
        self._resolve = resolve
        self._timeout = urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds)
        self._timeout_seconds = timeout_seconds
        self._ca_certs = ca_certs
        self._clock = clock
        self._rng = rng

    @property
    def schedule(self) -> RetrySchedule:
        return self._schedule

    def deliver(self, url: str, event: WebhookEvent, attempt: int) -> DeliveryResult:
        """POST `event` to `url` once (attempt number `attempt`, from 1) and say what to do next."""
        try:
            target = check_callback_url(url, allow_private=self._allow_private, resolve=self._resolve)
        except CallbackHostUnresolved as exc:
            return self._failed(attempt, None, str(exc))
        except CallbackUrlRefused as exc:
            return DeliveryResult(DeliveryOutcome.GAVE_UP, attempt, None, _short(f"refused: {exc}"))
        answer = self._post(target, event)
        if answer.status is not None and 200 <= answer.status < 300:
            return DeliveryResult(DeliveryOutcome.DELIVERED, attempt, answer.status)
        return self._failed(attempt, answer.status, answer.error or "no answer")

    def _failed(self, attempt: int, status: int | None, error: str) -> DeliveryResult:
        if attempt >= self._schedule.max_attempts:
            return DeliveryResult(DeliveryOutcome.GAVE_UP, attempt, status, _short(error))
        delay = self._schedule.delay_after(attempt, self._rng)
        return DeliveryResult(DeliveryOutcome.RETRY, attempt, status, _short(error), delay)

    def _post(self, target: CallbackUrl, event: WebhookEvent) -> _Answer:
        """Try the checked addresses in order until one connects; its answer (or failure) is the result."""
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Connection": "close",
            EVENT_ID_HEADER: event.id,
            SIGNATURE_HEADER: sign(self._secret, event.body, int(self._clock())),
        }
        answer = _Answer(None, "no address to connect to", connected=False)
        for address in target.addresses[:MAX_ADDRESSES_TRIED]:
            answer = self._post_to(target, address, headers, event.body)
            if answer.connected:
                break
        return answer

    def _post_to(self, target: CallbackUrl, address: IPAddress, headers: dict[str, str], body: bytes) -> _Answer:
        pool = self._pool(target, address)
        try:
            response = pool.urlopen(
                "POST",
                target.target,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,  # the body is never read: only the status matters
            )
            status = response.status
            response.close()  # closes the connection: it is checked out, so pool.close() would not
        except (HTTPError, OSError) as exc:
            return _Answer(None, self._describe(exc), connected=not _is_connect_failure(exc))
        finally:
            pool.close()
        if 300 <= status < 400:
            return _Answer(status, f"HTTP {status} (redirects are not followed)", connected=True)
        return _Answer(status, None if 200 <= status < 300 else f"HTTP {status}", connected=True)

    def _pool(self, target: CallbackUrl, address: IPAddress) -> urllib3.HTTPConnectionPool:
        """A pool for one connection to the checked `address`, speaking to `target.host` (SNI, certificate)."""
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                str(address),
                target.port,
                timeout=self._timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                server_hostname=target.host,  # SNI, and the name the certificate must match
            )
        return urllib3.HTTPConnectionPool(str(address), target.port, timeout=self._timeout, maxsize=1, retries=False)

    def _describe(self, exc: BaseException) -> str:
        """A short, safe lastError: the kind of failure, never the URL's secrets or a response body."""
        seconds = f"{self._timeout_seconds:g}s"
        if isinstance(exc, NewConnectionError):
            return "connection refused" if _caused_by(exc, ConnectionRefusedError) else "could not connect"
        if isinstance(exc, ReadTimeoutError):
            return f"no response within {seconds}"
        if isinstance(exc, ConnectTimeoutError):
            return f"could not connect within {seconds}"
        if isinstance(exc, SSLError):
            return _short(f"TLS failed: {exc}")
        if isinstance(exc, ProtocolError):
            return "connection closed before a response"
        return f"request failed ({type(exc).__name__})"


def _is_connect_failure(exc: BaseException) -> bool:
    # urllib3's NewConnectionError subclasses its ConnectTimeoutError; both mean nothing was sent.
    return isinstance(exc, ConnectTimeoutError)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
