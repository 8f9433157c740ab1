"""The one in-process cache: bounded in entries, each entry kept for its own time at most."""

from __future__ import annotations

import threading

import pytest

from chalicelib.caching import TimedCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_its_time_runs_out():
    clock = Clock()
    cache: TimedCache[str, str] = TimedCache(8, clock)
    cache.put("a", "first", 10)

    clock.now += 9.9
    served = cache.get("a")
    clock.now += 0.1

    assert served == "first" and cache.get("a") is None and "a" not in cache


def test_each_entry_keeps_its_own_time_to_live():
    clock = Clock()
    cache: TimedCache[str, str] = TimedCache(8, clock)
    cache.put("short", "s", 1)
    cache.put("long", "l", 60)

    clock.now += 30

    assert cache.get("short") is None and cache.get("long") == "l"


def test_a_full_cache_drops_the_least_recently_used_entry():
    cache: TimedCache[str, int] = TimedCache(2, Clock())
    cache.put("a", 1, 60)
    cache.put("b", 2, 60)
    cache.get("a")  # used: b is now the least recent

    cache.put("c", 3, 60)

    assert cache.get("a") == 1 and cache.get("b") is None and cache.get("c") == 3 and len(cache) == 2


def test_expired_entries_are_not_counted():
    clock = Clock()
    cache: TimedCache[str, int] = TimedCache(4, clock)
    cache.put("a", 1, 1)
    cache.put("b", 2, 5)

    clock.now += 2

    assert len(cache) == 1


def test_a_time_to_live_of_zero_stores_nothing():
    cache: TimedCache[str, int] = TimedCache(4, Clock())

    cache.put("a", 1, 0)

    assert cache.get("a", -1) == -1 and len(cache) == 0


def test_a_cache_must_hold_at_least_one_entry():
    with pytest.raises(ValueError):
        TimedCache(0)


def test_threads_writing_at_once_never_exceed_the_bound():
    cache: TimedCache[int, int] = TimedCache(50)

    def write(offset: int) -> None:
        for n in range(2000):
            cache.put(offset * 10_000 + n, n, 60)
            cache.get(offset * 10_000 + n // 2)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(cache) == 50
