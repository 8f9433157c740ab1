"""Per-client rate limiting shared by every API instance: a fixed window counted in DynamoDB.

One UpdateItem per request (ADD + ReturnValues) on an item per client and
window, which expires through the table's TTL. Process memory would let each
Lambda container grant the full quota again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass
from typing import Any, Callable


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


class RateLimiter:
    def __init__(self, table: Any, max_requests: int, window_ms: int, clock: Callable[[], float] = time.time) -> None:
        self._table, self._max, self._window_ms, self._clock = table, max_requests, window_ms, clock

    def hit(self, client: str) -> Decision:
        now_ms = int(self._clock() * 1000)
        window = now_ms // self._window_ms
        window_end_ms = (window + 1) * self._window_ms
        reset = max(1, math.ceil((window_end_ms - now_ms) / 1000))
        digest = hashlib.sha256(client.encode()).hexdigest()[:32]
        result = self._table.update_item(
            Key={"pk": f"RATE#{digest}#{window}", "sk": "RATE"},
            UpdateExpression="ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":one": 1, ":ttl": window_end_ms // 1000 + 60},
            ReturnValues="UPDATED_NEW",
        )
        hits = int(result["Attributes"]["hits"])
        return Decision(hits <= self._max, self._max, max(0, self._max - hits), reset)

    def unknown(self) -> Decision:
        """Used when the counter cannot be reached: the limiter fails open."""
        now_ms = int(self._clock() * 1000)
        reset = max(1, math.ceil((self._window_ms - now_ms % self._window_ms) / 1000))
        return Decision(True, self._max, self._max, reset)
