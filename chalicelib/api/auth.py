"""Who is calling: the API key a request presents, checked against the key store.

Where the check runs: in our HTTP middleware, not in a Chalice built-in authorizer.
- A built-in authorizer is an API Gateway TOKEN authorizer: it sees exactly one
  header, so `X-API-Key` could not be accepted next to `Authorization: Bearer`
  (REQUEST authorizers, which see several, are not what Chalice builds).
- `chalice local` does run built-in authorizers, but it always reads
  `Authorization` whatever header is configured (aws/chalice#1675), answers a
  missing header itself with `{"message":"Unauthorized"}` and a denial with a
  403. In the cloud, API Gateway answers both before our code runs, so our error
  shape and `WWW-Authenticate` would need GatewayResponses there and could not
  be had locally at all: local and cloud would disagree.
- Each uncached check would be a second Lambda invocation (and cold start).
The middleware is the same code in `chalice local`, the Chalice test client and
Lambda, next to the one place that already shapes every error response.

API Gateway would cache an authorizer's answer per token (300 s unless told);
`Authenticator` keeps the same kind of cache in process, for at most
MAX_API_KEY_CACHE_SECONDS, so a revoked key stops working within a minute while
a busy key costs no DynamoDB read per request.
"""

from __future__ import annotations

import hmac
import time
from typing import Callable, Mapping, Protocol

from chalicelib.aws.clients import dependency
from chalicelib.caching import TimedCache
from chalicelib.config import MAX_API_KEY_CACHE_SECONDS
from chalicelib.errors import Unauthorized
from chalicelib.keys.store import ApiKey, StoredKey, hash_key, key_id_of

DATABASE = "database"
_MAX_CACHED_KEYS = 1024


class KeyLookup(Protocol):
    def get(self, key_id: str) -> StoredKey | None: ...


def _bearer_token(authorization: str) -> str:
    """RFC 9110: the scheme name is case-insensitive; RFC 6750: one space, then the token."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be `Bearer <API key>`")
    return token.strip()


def presented_key(headers: Mapping[str, str]) -> str:
    """The key in `Authorization: Bearer <key>` or `X-API-Key: <key>`; both may be sent if they agree."""
    lowered = {name.lower(): value for name, value in headers.items()}
    candidates = set()
    if "authorization" in lowered:
        candidates.add(_bearer_token(lowered["authorization"]))
    if "x-api-key" in lowered:
        candidates.add(lowered["x-api-key"].strip())
    if not candidates:
        raise Unauthorized("an API key is required: send `Authorization: Bearer <API key>`")
    if len(candidates) > 1:
        raise Unauthorized("Authorization and X-API-Key carry different keys")
    return candidates.pop()


class Authenticator:
    """Turns request headers into the ApiKey they present, or raises Unauthorized.

    Lookups by key id are cached for `cache_seconds`, found or not: a negative
    entry spares the table a flood of requests with one made-up id. The cache
    holds records and hashes, never presented keys, and the hash comparison
    runs on every request, in constant time (hmac.compare_digest), so a cached
    entry admits only the exact key it was created for.
    """

    def __init__(
        self,
        keys: KeyLookup,
        cache_seconds: float = 30,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = _MAX_CACHED_KEYS,
    ) -> None:
        if not 0 <= cache_seconds <= MAX_API_KEY_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be between 0 and {MAX_API_KEY_CACHE_SECONDS}")
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._cache: TimedCache[str, tuple[StoredKey | None]] = TimedCache(max_entries, clock)

    def authenticate(self, headers: Mapping[str, str]) -> ApiKey:
        key = presented_key(headers)
        key_id = key_id_of(key)
        if key_id is None:
            raise Unauthorized("malformed API key")
        stored = self._lookup(key_id)
        if stored is None or not hmac.compare_digest(hash_key(key), stored.key_hash):
            raise Unauthorized("invalid API key")  # unknown id and wrong secret read the same
        if stored.record.revoked:
            raise Unauthorized("API key revoked")
        return stored.record

    def _lookup(self, key_id: str) -> StoredKey | None:
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached[0]  # a 1-tuple, so a key found missing is cached too
        with dependency(DATABASE):  # the table unreachable: 503, never a silent pass
            stored = self._keys.get(key_id)
        self._cache.put(key_id, (stored,), self._cache_seconds)
        return stored
