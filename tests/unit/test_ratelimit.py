"""Who a request counts against: the gateway's source address, IPv6 callers per /64."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.http import _client_id


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
