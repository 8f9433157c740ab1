"""One delivery attempt of a signed webhook event (chalicelib.webhooks.events): POST it, say what to do next.

Each attempt re-checks the URL with the SSRF policy of chalicelib.webhooks.urls
(DNS may have changed since initiate) and connects to an address that check
accepted, sending the host name in the Host header and as TLS SNI, with the
certificate verified for that name. Redirects are not followed.

The whole exchange (connect, TLS, request, the answer's status and headers)
has one wall-clock deadline, CALLBACK_ATTEMPT_SECONDS (chalicelib.webhooks.exchange):
webhooks share workers with file work, so a receiver that dribbles its answer
is given up then. The response body is never read.
"""

from __future__ import annotations

import enum
import random
import ssl
import time
from dataclasses import dataclass
from typing import Callable

from chalicelib.webhooks.events import EVENT_ID_HEADER, SIGNATURE_HEADER, RetrySchedule, WebhookEvent, key_of, sign
from chalicelib.webhooks.exchange import Deadline, ExchangeFailed, exchange
from chalicelib.webhooks.urls import (
    CallbackHostUnresolved,
    CallbackUrl,
    CallbackUrlRefused,
    Resolver,
    check_callback_url,
)

ATTEMPT_SECONDS = 10.0  # CALLBACK_ATTEMPT_SECONDS' default: the whole attempt, from connect to status
CONNECT_SECONDS = 5.0  # per address, within the attempt: a dead first address leaves time for a second
# The longest from claiming an attempt to recording its outcome is the deadline plus this margin.
# DNS is resolved before the deadline starts, by the system resolver: glibc gives up after
# timeout:5 x attempts:2 per name server (resolv.conf(5) defaults); the rest covers the writes.
ATTEMPT_MARGIN_SECONDS = 20
MAX_ADDRESSES_TRIED = 3
MAX_ERROR_LENGTH = 200
USER_AGENT = "Delineate-Webhooks/1"


# --- one delivery attempt ----------------------------------------------------------------------


class DeliveryOutcome(str, enum.Enum):
    DELIVERED = "delivered"  # the receiver answered 2xx
    RETRY = "retry"  # failed; send attempt + 1 after `retry_in_seconds`
    GAVE_UP = "gave_up"  # failed for the last time, or the URL is now refused
    POSTPONED = "postponed"  # not sent: its owner had its most attempts in flight (webhooks.delivery)


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    attempt: int
    status_code: int | None = None
    last_error: str | None = None  # short, for the job's record; never a secret or a response body
    retry_in_seconds: int | None = None


class WebhookSender:
    """Delivers one attempt of one event; the caller (the queue worker) schedules the next from the result."""

    def __init__(
        self,
        secret: str | bytes,
        *,
        allow_private: bool,
        schedule: RetrySchedule | None = None,
        resolve: Resolver | None = None,
        attempt_seconds: float = ATTEMPT_SECONDS,
        connect_seconds: float = CONNECT_SECONDS,
        ca_certs: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        key_of(secret)  # an empty secret is a configuration error, found before the first event
        self._secret = secret
        self._allow_private = allow_private
        self._schedule = schedule or RetrySchedule()
        self._resolve = resolve
        self._attempt_seconds = attempt_seconds
        self._connect_seconds = connect_seconds
        self._tls = ssl.create_default_context(cafile=ca_certs)  # CERT_REQUIRED, the host name checked
        self._clock = clock
        self._rng = rng

    @property
    def schedule(self) -> RetrySchedule:
        return self._schedule

    @property
    def longest_attempt_seconds(self) -> int:
        """The most one attempt can take, claim to outcome: how long it counts as in flight."""
        return int(self._attempt_seconds) + 1 + ATTEMPT_MARGIN_SECONDS

    def deliver(self, url: str, event: WebhookEvent, attempt: int) -> DeliveryResult:
        """POST `event` to `url` once (attempt number `attempt`, from 1) and say what to do next."""
        try:
            target = check_callback_url(url, allow_private=self._allow_private, resolve=self._resolve)
        except CallbackHostUnresolved as exc:
            return self._failed(attempt, None, str(exc))
        except CallbackUrlRefused as exc:
            return DeliveryResult(DeliveryOutcome.GAVE_UP, attempt, None, _short(f"refused: {exc}"))
        try:
            status = self._post(target, event)
        except ExchangeFailed as exc:
            return self._failed(attempt, None, str(exc))
        if 200 <= status < 300:
            return DeliveryResult(DeliveryOutcome.DELIVERED, attempt, status)
        if 300 <= status < 400:
            return self._failed(attempt, status, f"HTTP {status} (redirects are not followed)")
        return self._failed(attempt, status, f"HTTP {status}")

    def _failed(self, attempt: int, status: int | None, error: str) -> DeliveryResult:
        if attempt >= self._schedule.max_attempts:
            return DeliveryResult(DeliveryOutcome.GAVE_UP, attempt, status, _short(error))
        delay = self._schedule.delay_after(attempt, self._rng)
        return DeliveryResult(DeliveryOutcome.RETRY, attempt, status, _short(error), delay)

    def _post(self, target: CallbackUrl, event: WebhookEvent) -> int:
        """Try the checked addresses in order until one connects; its answer (or failure) is the result."""
        request = self._request(target, event)
        deadline = Deadline(self._attempt_seconds)
        tls = (self._tls, target.host) if target.scheme == "https" else None
        failure = ExchangeFailed("no address to connect to")
        for address in target.addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return exchange(address, target.port, request, deadline, self._connect_seconds, tls)
            except ExchangeFailed as exc:
                if exc.connected:
                    raise
                failure = exc
        raise failure

    def _request(self, target: CallbackUrl, event: WebhookEvent) -> bytes:
        """The request's bytes. Every value is ASCII and free of CR/LF: the URL check refuses
        control characters and spaces, the host is IDNA, the id and signature are ours."""
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "Content-Length": str(len(event.body)),
            "User-Agent": USER_AGENT,
            "Connection": "close",
            EVENT_ID_HEADER: event.id,
            SIGNATURE_HEADER: sign(self._secret, event.body, int(self._clock())),
        }
        lines = [f"POST {target.target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + event.body


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
