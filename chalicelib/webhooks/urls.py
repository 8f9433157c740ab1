"""Callback URLs: parse one, and refuse those that would turn the service into a proxy into its own network.

A job's `callbackUrl` is a server-side request forgery (SSRF) risk: the worker
runs inside the deployment's network, next to the instance metadata service
(169.254.169.254, fd00:ec2::254) and whatever else the VPC reaches. So:

- The URL must be absolute http(s), at most 2,048 characters, without
  userinfo, with a port in 1-65535 and a real host.
- Every address the host is or resolves to is classified; one refused address
  refuses the URL (an attacker controls which record a client would pick).
- Hosts are parsed the way resolvers would read them, not the way they look:
  `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` are all 127.0.0.1 to glibc's
  inet_aton (which getaddrinfo uses for numeric hosts, and which also accepts
  trailing garbage), so a host whose last label is a number is parsed here as
  an inet_aton IPv4 address (the WHATWG URL rule) and never handed to a
  resolver. IPv4-mapped IPv6 (`::ffff:7f00:1`), NAT64 (`64:ff9b::/96`) and 6to4
  addresses are judged by the IPv4 address they carry.
- Python's `ipaddress.is_private`/`is_global` changed meaning in patch releases
  (3.11.10 / 3.12.4, CVE-2024-4032), so the ranges that matter are listed here
  explicitly; `is_global` is only the final backstop ("anything else not
  globally reachable is reserved").

`allow_private` (CALLBACK_ALLOW_PRIVATE, the dev stack's default) lifts the
refusal for loopback and private ranges only; link-local and the cloud
metadata addresses stay refused always.

The check returns the addresses it accepted; delivery connects to one of
those, never to a fresh resolution of the name, so DNS cannot change between
the check and the connection (DNS rebinding).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Callable, Iterable
from urllib.parse import urlsplit

from chalicelib.webhooks.addresses import DESCRIPTIONS, IPAddress, refusal

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[[str, int], Iterable[str]]
"""(host, port) -> the IP addresses (as text) the host resolves to; socket.getaddrinfo by default."""


class CallbackUrlRefused(ValueError):
    """The callback URL is malformed or points somewhere the service must not call.

    The message is written for the API caller (the API answers 400 with it).
    """


class CallbackHostUnresolved(CallbackUrlRefused):
    """The host name did not resolve. At initiate a 400; at delivery a retry (DNS may recover)."""


_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)\Z")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class CallbackUrl:
    """A checked callback URL and the addresses it may be delivered to."""

    url: str
    scheme: str
    host: str  # lower case, ASCII (IDNA), no trailing dot; an IP literal in canonical form, IPv6 without brackets
    port: int
    target: str  # path and query: the request target sent on the wire
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def check_callback_url(raw: object, *, allow_private: bool, resolve: Resolver | None = None) -> CallbackUrl:
    """Parse `raw`, resolve its host and return it with the allowed addresses, or raise CallbackUrlRefused."""
    if not isinstance(raw, str) or not raw:
        raise CallbackUrlRefused("callbackUrl: must be a non-empty string")
    scheme, host, literal, port, target = _parse(raw)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (_allowed(literal, allow_private, subject=host),)
    else:
        if _is_localhost_name(host) and not allow_private:
            raise CallbackUrlRefused(f"callbackUrl: host {host} is a loopback name; use a public host")
        resolved = _resolve(resolve or system_resolve, host, port)
        addresses = tuple(_allowed(address, allow_private, subject=None) for address in resolved)
    return CallbackUrl(raw, scheme, host, port, target, addresses)


def system_resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _allowed(address: IPAddress, allow_private: bool, subject: str | None) -> IPAddress:
    """`address` (an IPv4-mapped one as plain IPv4) if allowed; else a refusal naming a literal, not a lookup."""
    kind = refusal(address, allow_private)
    if kind is not None:
        where = f"host {subject} is" if subject else "host resolves to"
        raise CallbackUrlRefused(f"callbackUrl: {where} {DESCRIPTIONS[kind]}; use a public host")
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _resolve(resolve: Resolver, host: str, port: int) -> list[IPAddress]:
    try:
        answers = list(resolve(host, port))
    except (OSError, UnicodeError):
        raise CallbackHostUnresolved(f"callbackUrl: host {host} could not be resolved") from None
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            address = ip_address(answer.split("%", 1)[0])  # a link-local answer may carry a scope ("%eth0")
        except ValueError:
            raise CallbackHostUnresolved(f"callbackUrl: host {host} could not be resolved") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise CallbackHostUnresolved(f"callbackUrl: host {host} could not be resolved")
    return addresses


def _parse(raw: str) -> tuple[str, str, IPAddress | None, int, str]:
    """(scheme, host, the host as an address when it is a literal, port, request target)."""
    if len(raw) > MAX_URL_LENGTH:
        raise CallbackUrlRefused(f"callbackUrl: must be at most {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARACTERS.search(raw):
        raise CallbackUrlRefused("callbackUrl: must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(raw)
    except ValueError:  # urlsplit checks bracketed hosts itself
        detail = "has an invalid IPv6 address" if "[" in raw else "is not a valid URL"
        raise CallbackUrlRefused(f"callbackUrl: {detail}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not raw.lower().startswith(f"{scheme}://"):
        raise CallbackUrlRefused("callbackUrl: must be an absolute http:// or https:// URL")
    host_text, port_text, bracketed = _split_netloc(parts.netloc)
    host, literal = _parse_host(host_text, bracketed)
    port = _parse_port(port_text, DEFAULT_PORTS[scheme])
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.isascii():
        raise CallbackUrlRefused("callbackUrl: path and query must be ASCII (percent-encode other characters)")
    return scheme, host, literal, port, target


def _split_netloc(netloc: str) -> tuple[str, str | None, bool]:
    """(host, port text or None, whether the host was in brackets)."""
    if "@" in netloc:
        raise CallbackUrlRefused("callbackUrl: must not contain a user name or password")
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise CallbackUrlRefused("callbackUrl: has an unterminated IPv6 address")
        host, rest, bracketed = netloc[1:end], netloc[end + 1 :], True
    else:
        host, colon, port = netloc.partition(":")
        rest, bracketed = colon + port, False
    if rest and not rest.startswith(":"):
        raise CallbackUrlRefused("callbackUrl: has an invalid host")
    if not host:
        raise CallbackUrlRefused("callbackUrl: must have a host")
    return host, (rest[1:] if rest else None), bracketed


def _parse_port(text: str | None, default: int) -> int:
    if not text:  # absent, or "host:" with nothing after the colon (which means the default port)
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise CallbackUrlRefused("callbackUrl: port must be a number from 1 to 65535")
    return int(text)


def _parse_host(text: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """(normalised host, its address when it is an IP literal)."""
    if bracketed:
        try:
            address = IPv6Address(text)  # a zone ("%eth0") has no meaning for a remote service
        except ValueError:
            raise CallbackUrlRefused("callbackUrl: has an invalid IPv6 address") from None
        if address.scope_id is not None:
            raise CallbackUrlRefused("callbackUrl: IPv6 address must not have a zone")
        return str(address), address
    host = _ascii_host(text)
    ipv4 = _parse_ipv4(host)
    if ipv4 is not None:
        return str(ipv4), ipv4
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise CallbackUrlRefused("callbackUrl: has an invalid host name")
    return host, None


def _ascii_host(text: str) -> str:
    """Lower case, IDNA-encoded, one trailing dot (the DNS root) removed."""
    host = text.lower()
    if not host.isascii():
        try:
            # IDNA 2003 maps full-width digits and dots too, so "１２７．０．０．１" becomes 127.0.0.1 here.
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise CallbackUrlRefused("callbackUrl: has an invalid host name") from None
    return host[:-1] if host.endswith(".") else host


def _parse_ipv4(host: str) -> IPv4Address | None:
    """The host as inet_aton reads it (1-4 parts; decimal, 0-octal or 0x-hex), or None when it is a name.

    A host whose last label is a number must be an IPv4 address (WHATWG URL
    standard); anything else numeric-looking is refused rather than resolved.
    """
    labels = host.split(".")
    if not _NUMERIC_LABEL.match(labels[-1]):
        return None
    numbers = [_ipv4_number(label) for label in labels] if len(labels) <= 4 else [None]
    if any(number is None for number in numbers):
        raise CallbackUrlRefused("callbackUrl: has an invalid IPv4 address")
    *head, last = [number for number in numbers if number is not None]
    if any(part > 255 for part in head) or last >= 256 ** (4 - len(head)):
        raise CallbackUrlRefused("callbackUrl: has an invalid IPv4 address")
    value = last
    for index, part in enumerate(head):
        value += part << (8 * (3 - index))
    return IPv4Address(value)


def _ipv4_number(label: str) -> int | None:
    if not _NUMERIC_LABEL.match(label):
        return None
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8) if set(label) <= set("01234567") else None
    return int(label)


def _is_localhost_name(host: str) -> bool:
    """RFC 6761: `localhost` and every name under it are loopback, whatever a resolver says."""
    return host == "localhost" or host.endswith(".localhost")
