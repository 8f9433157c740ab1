"""Callback URLs: malformed ones and ones reaching our own network are refused, in every spelling."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address

import pytest

from chalicelib.webhooks.addresses import AddressClass, classify
from chalicelib.webhooks.urls import (
    MAX_URL_LENGTH,
    CallbackHostUnresolved,
    CallbackUrlRefused,
    check_callback_url,
)

PUBLIC = "93.184.215.14"


def resolver(*answers: str):
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return list(answers)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def refuse(url: str, allow_private: bool = False, resolve=None) -> str:
    with pytest.raises(CallbackUrlRefused) as refused:
        check_callback_url(url, allow_private=allow_private, resolve=resolve or resolver(PUBLIC))
    return str(refused.value)


# --- loopback and private literals: refused by default, allowed with CALLBACK_ALLOW_PRIVATE ---------

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://2130706433/",  # one decimal number
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex
    "http://0x7f000001/",  # one hex number
    "http://017700000001/",  # one octal number
    "http://127.1/",  # short form: a.b with b filling three bytes
    "http://127.0.1/",  # a.b.c with c filling two bytes
    "http://127.0.0.1./",  # trailing dot
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",  # the same, hex
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://１２７．０．０．１/",  # full-width digits and dots (IDNA maps them)
]

PRIVATE_SPELLINGS = [
    "http://10.0.0.1/",
    "http://012.0.0.1/",  # octal 10.0.0.1
    "http://167772161/",  # decimal 10.0.0.1
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://0xc0.0xa8.1.1/",  # hex 192.168.1.1
    "http://100.64.0.1/",  # shared address space (CGNAT): treated as private
    "http://[fd12:3456::1]/",  # unique local
    "http://[::ffff:10.0.0.1]/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_loopback_in_any_spelling_is_refused_by_default(url):
    assert "loopback" in refuse(url)


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + PRIVATE_SPELLINGS)
def test_loopback_and_private_are_allowed_when_private_is_allowed(url):
    checked = check_callback_url(url, allow_private=True, resolve=resolver(PUBLIC))
    assert len(checked.addresses) == 1


@pytest.mark.parametrize("url", PRIVATE_SPELLINGS)
def test_private_in_any_spelling_is_refused_by_default(url):
    assert "private" in refuse(url)


def test_a_numeric_host_is_read_as_inet_aton_reads_it():
    for url in ("http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://127.1/"):
        checked = check_callback_url(url, allow_private=True, resolve=resolver())
        assert checked.addresses == (IPv4Address("127.0.0.1"),)
        assert checked.host == "127.0.0.1"


def test_an_ipv4_mapped_address_is_connected_to_as_ipv4():
    checked = check_callback_url("http://[::ffff:7f00:1]:8080/x", allow_private=True, resolve=resolver())
    assert checked.addresses == (IPv4Address("127.0.0.1"),)
    assert checked.host_header == "[::ffff:7f00:1]:8080"


# --- never allowed, whatever CALLBACK_ALLOW_PRIVATE says ---------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://2852039166/", "link-local"),  # 169.254.169.254 as one number
        ("http://0xa9.0xfe.0xa9.0xfe/", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[febf::1]/", "link-local"),  # still fe80::/10
        ("http://[fd00:ec2::254]/", "metadata"),  # the IPv6 instance metadata service, inside fc00::/7
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://255.255.255.255/", "reserved"),
        ("http://240.0.0.1/", "reserved"),
        ("http://192.0.2.1/", "reserved"),  # documentation
        ("http://[2001:db8::1]/", "reserved"),
        ("http://[::127.0.0.1]/", "reserved"),  # deprecated IPv4-compatible
        ("http://[2001::1]/", "reserved"),  # Teredo
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_link_local_metadata_multicast_unspecified_and_reserved_are_always_refused(url, kind, allow_private):
    assert kind in refuse(url, allow_private=allow_private)


def test_the_refusal_message_names_the_address_kind_for_the_api_caller():
    assert refuse("http://0177.0.0.1/hook") == "callbackUrl: host 127.0.0.1 is a loopback address; use a public host"


# --- names: judged by every address they resolve to ---------------------------------------------------


def test_a_public_host_is_accepted_with_its_addresses():
    resolve = resolver(PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    checked = check_callback_url("https://Hooks.Example.com./delineate?x=1#frag", allow_private=False, resolve=resolve)
    assert (checked.scheme, checked.host, checked.port, checked.target) == (
        "https",
        "hooks.example.com",
        443,
        "/delineate?x=1",
    )
    assert checked.addresses == (IPv4Address(PUBLIC), IPv6Address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
    assert checked.host_header == "hooks.example.com"
    assert resolve.calls == [("hooks.example.com", 443)]


@pytest.mark.parametrize(
    "answers",
    [
        ("127.0.0.1",),
        (PUBLIC, "10.1.2.3"),  # one refused record among several refuses the host
        ("::1", PUBLIC),
        ("::ffff:127.0.0.1",),
        (PUBLIC, "169.254.169.254"),
        ("fd00:ec2::254",),
        ("fe80::1%eth0",),  # a scoped link-local answer
        ("0.0.0.0",),
    ],
)
def test_a_host_resolving_to_any_refused_address_is_refused(answers):
    message = refuse("https://rebind.example.com/", resolve=resolver(*answers))
    assert message.startswith("callbackUrl: host resolves to ")
    assert not any(answer in message for answer in answers)  # what internal names resolve to is not revealed


def test_a_host_resolving_to_link_local_is_refused_even_when_private_is_allowed():
    assert "link-local" in refuse("https://x.example.com/", allow_private=True, resolve=resolver("169.254.169.254"))


def test_a_host_resolving_to_private_is_allowed_when_private_is_allowed():
    checked = check_callback_url("http://receiver:8080/", allow_private=True, resolve=resolver("172.18.0.5"))
    assert checked.addresses == (IPv4Address("172.18.0.5"),)


@pytest.mark.parametrize(
    "url", ["http://localhost/", "http://localhost./", "http://LocalHost:9000/", "http://a.localhost/"]
)
def test_localhost_names_are_refused_without_asking_a_resolver(url):
    resolve = resolver(PUBLIC)
    assert "loopback" in refuse(url, resolve=resolve)
    assert resolve.calls == []


def test_an_unresolvable_host_is_refused_as_unresolved():
    def nxdomain(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(CallbackHostUnresolved, match="could not be resolved"):
        check_callback_url("https://nowhere.invalid/", allow_private=False, resolve=nxdomain)
    with pytest.raises(CallbackHostUnresolved):
        check_callback_url("https://empty.example.com/", allow_private=False, resolve=resolver())


# --- malformed URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:pw@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("http://example.com@127.0.0.1/", "user name or password"),
        ("ftp://example.com/", "absolute http"),
        ("file:///etc/passwd", "absolute http"),
        ("gopher://example.com/", "absolute http"),
        ("javascript:alert(1)", "absolute http"),
        ("/relative/path", "absolute http"),
        ("//example.com/path", "absolute http"),
        ("example.com/path", "absolute http"),
        ("http:example.com", "absolute http"),
        ("http:/example.com", "absolute http"),
        ("http://", "must have a host"),
        ("http:///path", "must have a host"),
        ("http://:80/", "must have a host"),
        ("http://example.com:0/", "port"),
        ("http://example.com:65536/", "port"),
        ("http://example.com:99999999999999999999/", "port"),
        ("http://example.com:-1/", "port"),
        ("http://example.com:8o/", "port"),
        ("http://example.com:80:80/", "port"),
        ("http://[::1/", "IPv6"),
        ("http://[not-v6]/", "IPv6"),
        ("http://[127.0.0.1]/", "IPv6"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://1.2.3.4.5/", "IPv4"),
        ("http://256.0.0.1/", "IPv4"),
        ("http://1.16777216/", "IPv4"),  # b fills three bytes: at most 0xffffff
        ("http://4294967296/", "IPv4"),
        ("http://09.0.0.1/", "IPv4"),  # 09 is not octal
        ("http://0x7g.1/", "IPv4"),  # the last label is a number, so the host must be an IPv4 address
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/\npath", "control"),
        ("http://example.com\\@127.0.0.1/", "backslash"),
        ("http://exam_ple..com/", "host name"),
        ("http://-example.com/", "host name"),
        ("http://%31%32%37.0.0.1/", "IPv4"),  # percent-encoded hosts are not decoded, and not allowed
        ("http://%65xample.com/", "host name"),
        ("http://example.com/é", "ASCII"),
        ("", "non-empty"),
    ],
)
def test_malformed_urls_are_refused_with_a_clear_message(url, message):
    assert message in refuse(url, allow_private=True)


def test_a_url_over_2048_characters_is_refused_and_one_at_the_limit_is_accepted():
    prefix = "https://example.com/"
    at_limit = prefix + "a" * (MAX_URL_LENGTH - len(prefix))
    assert check_callback_url(at_limit, allow_private=False, resolve=resolver(PUBLIC)).url == at_limit
    assert "at most 2048 characters" in refuse(at_limit + "a")


@pytest.mark.parametrize("value", [None, 42, ["http://example.com/"], {"url": "x"}])
def test_a_non_string_is_refused(value):
    with pytest.raises(CallbackUrlRefused, match="non-empty string"):
        check_callback_url(value, allow_private=True, resolve=resolver(PUBLIC))


def test_ports_schemes_and_targets_are_normalised():
    resolve = resolver(PUBLIC)
    checked = check_callback_url("HTTP://example.com:/", allow_private=False, resolve=resolve)
    assert (checked.scheme, checked.port, checked.target, checked.host_header) == ("http", 80, "/", "example.com")
    checked = check_callback_url("https://example.com:8443", allow_private=False, resolve=resolve)
    assert (checked.port, checked.target, checked.host_header) == (8443, "/", "example.com:8443")


def test_an_internationalised_name_is_resolved_in_its_ascii_form():
    resolve = resolver(PUBLIC)
    checked = check_callback_url("https://bücher.example/", allow_private=False, resolve=resolve)
    assert checked.host == "xn--bcher-kva.example"
    assert resolve.calls == [("xn--bcher-kva.example", 443)]


# --- the classification itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        (IPv4Address("8.8.8.8"), AddressClass.PUBLIC),
        (IPv4Address("100.63.255.255"), AddressClass.PUBLIC),
        (IPv4Address("100.128.0.0"), AddressClass.PUBLIC),
        (IPv4Address("100.127.255.255"), AddressClass.PRIVATE),
        (IPv4Address("172.32.0.1"), AddressClass.PUBLIC),
        (IPv4Address("172.31.255.255"), AddressClass.PRIVATE),
        (IPv6Address("2606:4700::1111"), AddressClass.PUBLIC),
        (IPv6Address("::ffff:8.8.8.8"), AddressClass.PUBLIC),
        (IPv6Address("fd00:ec2::253"), AddressClass.METADATA),
        (IPv6Address("4000::1"), AddressClass.RESERVED),  # outside global unicast 2000::/3
    ],
)
def test_classify(address, kind):
    assert classify(address) is kind
