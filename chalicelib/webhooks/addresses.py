"""Which kind of network an IP address is in, and whether a callback may reach it.

The ranges are listed explicitly: Python's `ipaddress.is_private`/`is_global`
changed meaning in patch releases (3.11.10 / 3.12.4, CVE-2024-4032), so they
are only the final backstop. An IPv6 address that carries an IPv4 one
(IPv4-mapped, NAT64, 6to4) is judged by the IPv4 address.
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Iterable, Union

IPAddress = Union[IPv4Address, IPv6Address]


class AddressClass(str, enum.Enum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    METADATA = "cloud metadata"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"


LIFTED_BY_ALLOW_PRIVATE = frozenset({AddressClass.LOOPBACK, AddressClass.PRIVATE})

DESCRIPTIONS = {
    AddressClass.LOOPBACK: "a loopback address",
    AddressClass.PRIVATE: "a private network address",
    AddressClass.LINK_LOCAL: "a link-local address",
    AddressClass.METADATA: "a cloud metadata service address",
    AddressClass.MULTICAST: "a multicast address",
    AddressClass.UNSPECIFIED: "an unspecified address",
    AddressClass.RESERVED: "a reserved address that is not publicly routable",
}

# First match wins, so the narrow entries come before the ranges that contain them.
_IPV4_RANGES: tuple[tuple[IPv4Network, AddressClass], ...] = tuple(
    (IPv4Network(network), kind)
    for network, kind in (
        ("0.0.0.0/8", AddressClass.UNSPECIFIED),  # "this network"; 0.0.0.0 reaches the local host on Linux
        ("127.0.0.0/8", AddressClass.LOOPBACK),
        ("169.254.0.0/16", AddressClass.LINK_LOCAL),  # holds 169.254.169.254, the instance metadata service
        ("10.0.0.0/8", AddressClass.PRIVATE),
        ("172.16.0.0/12", AddressClass.PRIVATE),
        ("192.168.0.0/16", AddressClass.PRIVATE),
        ("100.64.0.0/10", AddressClass.PRIVATE),  # shared address space (carrier-grade NAT, RFC 6598)
        ("224.0.0.0/4", AddressClass.MULTICAST),
        ("240.0.0.0/4", AddressClass.RESERVED),  # includes the broadcast address 255.255.255.255
        ("192.0.0.0/24", AddressClass.RESERVED),  # IETF protocol assignments
        ("192.0.2.0/24", AddressClass.RESERVED),  # documentation
        ("198.51.100.0/24", AddressClass.RESERVED),  # documentation
        ("203.0.113.0/24", AddressClass.RESERVED),  # documentation
        ("198.18.0.0/15", AddressClass.RESERVED),  # benchmarking
        ("192.88.99.0/24", AddressClass.RESERVED),  # deprecated 6to4 relay anycast
    )
)

_IPV6_RANGES: tuple[tuple[IPv6Network, AddressClass], ...] = tuple(
    (IPv6Network(network), kind)
    for network, kind in (
        ("::/128", AddressClass.UNSPECIFIED),
        ("::1/128", AddressClass.LOOPBACK),
        ("fd00:ec2::/32", AddressClass.METADATA),  # AWS: IMDS at fd00:ec2::254, DNS at ::253 (inside fc00::/7)
        ("fe80::/10", AddressClass.LINK_LOCAL),
        ("fc00::/7", AddressClass.PRIVATE),  # unique local addresses
        ("64:ff9b:1::/48", AddressClass.PRIVATE),  # local-use NAT64
        ("fec0::/10", AddressClass.RESERVED),  # deprecated site-local
        ("ff00::/8", AddressClass.MULTICAST),
        ("2001::/23", AddressClass.RESERVED),  # IETF protocol assignments, includes Teredo 2001::/32
        ("2001:db8::/32", AddressClass.RESERVED),  # documentation
        ("100::/64", AddressClass.RESERVED),  # discard-only
    )
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")


def classify(address: IPAddress) -> AddressClass:
    """Which kind of address this is, judging an IPv6 address that carries an IPv4 one by the IPv4 address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return classify(embedded)
    ranges: Iterable[tuple[IPv4Network | IPv6Network, AddressClass]] = (
        _IPV4_RANGES if isinstance(address, IPv4Address) else _IPV6_RANGES
    )
    for network, kind in ranges:
        if address in network:
            return kind
    if isinstance(address, IPv6Address) and address not in _GLOBAL_UNICAST:
        return AddressClass.RESERVED
    return AddressClass.PUBLIC if address.is_global else AddressClass.RESERVED


def refusal(address: IPAddress, allow_private: bool) -> AddressClass | None:
    """The class that makes `address` refused under this policy, or None when it may be called."""
    kind = classify(address)
    if kind is AddressClass.PUBLIC or (allow_private and kind in LIFTED_BY_ALLOW_PRIVATE):
        return None
    return kind


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour
