"""The shared limiter: leases tokens in batches (exact across instances, few writes per request)
and counts callers by the gateway's source address, IPv6 callers per /64."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.api.http import _client_id
from chalicelib.api.ratelimit import RateLimiter


class CountingTable:
    """The real (moto) table, counting the writes the limiter makes."""

    def __init__(self, table) -> None:
        self._table = table
        self.writes = 0

    def update_item(self, **kwargs):
        self.writes += 1
        return self._table.update_item(**kwargs)


class FixedClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(deployed) -> CountingTable:
    return CountingTable(deployed.table)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def limiter(table, clock, limit=100, window_ms=60_000) -> RateLimiter:
    return RateLimiter(table, limit, window_ms, clock=clock)


def test_a_steady_client_costs_a_write_every_few_requests_not_every_request(table, clock):
    one = limiter(table, clock)

    decisions = [one.hit("203.0.113.7") for _ in range(60)]

    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(99, 39, -1))
    assert table.writes <= 9  # leases of 1, 2, 4, 8, then 10 at a time


def test_instances_together_never_admit_more_than_the_limit(table, clock):
    instances = [limiter(table, clock, limit=25) for _ in range(3)]

    admitted = sum(instance.hit("203.0.113.7").allowed for _ in range(20) for instance in instances)

    assert admitted <= 25
    assert admitted >= 25 - 3 * 9  # at most (max lease - 1) unspent tokens per instance


def test_a_client_past_its_limit_is_refused_locally_without_further_writes(table, clock):
    one = limiter(table, clock, limit=3)
    assert [one.hit("c").allowed for _ in range(4)] == [True, True, True, False]
    writes = table.writes

    refusals = [one.hit("c") for _ in range(50)]

    assert not any(d.allowed for d in refusals) and all(d.remaining == 0 for d in refusals)
    assert table.writes == writes


def test_a_refusal_is_known_without_a_write_once_the_window_is_spent_and_not_before(table, clock):
    one = limiter(table, clock, limit=3)
    known_before = [one.refusal("c")] + [(one.hit("c"), one.refusal("c"))[1] for _ in range(3)]
    writes = table.writes

    assert known_before == [None, None, None, None]  # the 3rd token is still allowed; nothing says the 4th is not
    assert one.hit("c").allowed is False
    refusal = one.refusal("c")
    assert refusal is not None and (refusal.allowed, refusal.remaining, refusal.limit) == (False, 0, 3)
    assert table.writes == writes + 1  # the lease that found the window spent; refusal() itself writes nothing
    assert one.refusal("someone else") is None


def test_a_known_refusal_ends_with_its_window(table, clock):
    one = limiter(table, clock, limit=1, window_ms=1000)
    one.hit("c"), one.hit("c")
    assert one.refusal("c") is not None

    clock.now += 1

    assert one.refusal("c") is None


def test_a_new_window_grants_the_quota_again(table, clock):
    one = limiter(table, clock, limit=2, window_ms=1000)
    assert [one.hit("c").allowed for _ in range(3)] == [True, True, False]

    clock.now += 1

    assert one.hit("c").allowed


def test_clients_are_counted_apart(table, clock):
    one = limiter(table, clock, limit=1)
    assert one.hit("a").allowed and one.hit("b").allowed
    assert not one.hit("a").allowed


def event_from(source_ip: str | None) -> SimpleNamespace:
    return SimpleNamespace(context={"identity": {"sourceIp": source_ip}})


def test_ipv6_callers_in_one_64_share_a_quota():
    first = _client_id(event_from("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))
    second = _client_id(event_from("2001:db8:1:2::1"))

    assert first == second == "2001:db8:1:2::/64"


def test_ipv6_callers_in_neighbouring_64s_do_not():
    assert _client_id(event_from("2001:db8:1:2::1")) != _client_id(event_from("2001:db8:1:3::1"))


@pytest.mark.parametrize(
    ("source_ip", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped: the IPv4 caller it is
        (None, "unknown"),
    ],
)
def test_ipv4_callers_count_per_address(source_ip, counted_as):
    assert _client_id(event_from(source_ip)) == counted_as
