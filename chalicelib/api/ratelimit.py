"""Per-client rate limiting shared by every API instance, without a DynamoDB write per request.

The shared count is a fixed-window counter in DynamoDB (an item per client and
window, expiring through the table's TTL); process memory alone would let each
Lambda container grant the full quota again. Each instance *leases* tokens
from it in batches (one UpdateItem ADD ... ReturnValues) and spends them
locally, so a client polling at a steady rate costs a write every few
requests instead of every request.

A lease of k tokens that brings the counter to T holds token numbers T-k+1..T;
a token is admitted when its number is at most the limit. Tokens are counted
when leased, not when spent, so the instances together never admit more than
the limit in a window: there is no over-admission. The price is
under-admission: tokens an instance leased but did not spend before the
window ends are lost, at most (lease size - 1) per instance and client (with
the default maximum lease of 10 and two warm instances serving one client,
up to 18 of a 100-request window). Lease sizes start at 1 and double with each
lease in the window, so a client that sends a few requests leases no spare
tokens. Once an instance sees the window exhausted it refuses locally until
the window ends, so a client hammering past its limit costs no writes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_MAX_LEASE = 10


def client_key(source_ip: str) -> str:
    """Who a request counts against: an IPv4 address, or the /64 network of an IPv6 one.

    An IPv6 subscriber is routinely given a whole /64 (RFC 6177) and picks
    addresses in it at will (privacy extensions, RFC 8981), so counting single
    addresses would grant the quota again for each of 2**64 of them. An
    IPv4-mapped address counts as the IPv4 address it carries.
    """
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return source_ip
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


@dataclass
class _Lease:
    """Token numbers next..last of one client's window, held by this instance."""

    window: int
    next: int = 1
    last: int = 0
    size: int = 0  # of the latest lease; the next one doubles it

    def take(self) -> int | None:
        if self.next > self.last:
            return None
        token = self.next
        self.next += 1
        return token


class RateLimiter:
    def __init__(
        self,
        table: Any,
        max_requests: int,
        window_ms: int,
        clock: Callable[[], float] = time.time,
        max_lease: int = DEFAULT_MAX_LEASE,
    ) -> None:
        self._table, self._max, self._window_ms, self._clock = table, max_requests, window_ms, clock
        self._max_lease = max(1, max_lease)
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def hit(self, client: str, max_requests: int | None = None) -> Decision:
        """Spends one of `client`'s tokens; `max_requests` overrides the limit (an API key's own)."""
        limit = max_requests or self._max
        window, reset = self._window()
        digest = _digest(client)
        with self._lock:  # chalice local serves requests on threads
            lease = self._lease_for(digest, window)
            token = lease.take()
            if token is None:
                token = self._renew(lease, digest, window, limit)
        return Decision(token <= limit, limit, max(0, limit - token), reset)

    def refusal(self, client: str) -> Decision | None:
        """The refusal this instance already holds for `client` (at the default limit) this window, else None.

        Spends nothing and never asks the table: it lets a caller turn a client
        over its limit away before doing any work for it (the middleware: before
        the API-key lookup). The next token `hit` would hand out is past the
        limit when both the next one held and the last one leased are.
        """
        window, reset = self._window()
        with self._lock:
            lease = self._leases.get(_digest(client))
            exhausted = lease is not None and lease.window == window and min(lease.next, lease.last) > self._max
        return Decision(False, self._max, 0, reset) if exhausted else None

    def _window(self) -> tuple[int, int]:
        """The current window's number and the whole seconds until it ends (at least 1)."""
        now_ms = int(self._clock() * 1000)
        window = now_ms // self._window_ms
        return window, max(1, math.ceil(((window + 1) * self._window_ms - now_ms) / 1000))

    def _lease_for(self, digest: str, window: int) -> _Lease:
        lease = self._leases.get(digest)
        if lease is None or lease.window != window:
            if len(self._leases) > 10_000:  # clients of past windows
                self._leases = {key: held for key, held in self._leases.items() if held.window == window}
            lease = self._leases[digest] = _Lease(window)
        return lease

    def _renew(self, lease: _Lease, digest: str, window: int, limit: int) -> int:
        """Leases the next batch; once past the limit, refuses without asking again."""
        if lease.last > limit:
            return lease.last
        size = min(self._max_lease, max(1, lease.size * 2))
        result = self._table.update_item(
            Key={"pk": f"RATE#{digest}#{window}", "sk": "RATE"},
            UpdateExpression="ADD hits :size SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":size": size, ":ttl": (window + 1) * self._window_ms // 1000 + 60},
            ReturnValues="UPDATED_NEW",
        )
        lease.last = int(result["Attributes"]["hits"])
        lease.next = lease.last - size + 1
        lease.size = size
        token = lease.take()
        assert token is not None  # the batch just leased holds at least one token
        return token

    def unknown(self, max_requests: int | None = None) -> Decision:
        """Used when the counter cannot be reached: the limiter fails open."""
        limit = max_requests or self._max
        return Decision(True, limit, limit, self._window()[1])


def _digest(client: str) -> str:
    return hashlib.sha256(client.encode()).hexdigest()[:32]
