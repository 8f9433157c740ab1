"""One small in-process cache, bounded in entries and in time, safe across threads.

A Lambda execution environment lives for minutes to hours and serves one
request at a time, but `chalice local` and the dev consumers serve several
threads, so every read and write takes the lock. Each entry carries its own
time to live (a signed URL's reuse window depends on its expiry); the oldest
entries make room when the cache is full (least recently used first).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

from cachetools import TLRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING = object()


class TimedCache(Generic[K, V]):
    """`put(key, value, seconds)` keeps `value` for `seconds` at most; `get` answers `default` after that."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: TLRUCache = TLRUCache(maxsize=max_entries, ttu=_expiry, timer=clock)
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            found = self._entries.get(key, _MISSING)
        return default if found is _MISSING else found[1]

    def put(self, key: K, value: V, seconds: float) -> None:
        """Stores nothing for `seconds` <= 0, so a cache configured off stays empty."""
        if seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (seconds, value)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)


def _expiry(_key: object, entry: tuple[float, object], now: float) -> float:
    return now + entry[0]
