"""One HTTP/1.1 request over one connection, and the status of its answer, all before a wall-clock deadline.

urllib3 (http.client under it) times each connect and each socket read on its
own, so a receiver that sends its status line one byte every 0.5 s restarts
the read timeout with every byte: in review one held an attempt 18 s, and in
the cloud it could hold it up to the worker's 300 s Lambda timeout, keeping a
worker from file work. Here every socket operation (connect, TLS handshake,
send, receive) may wait only for the time left before the attempt's deadline,
so the attempt ends by then whatever the receiver does, and the socket is
closed. Only the answer's head is read, up to a cap; never its body.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from typing import Callable

from chalicelib.webhooks.addresses import IPAddress

# The answer's head (status line and headers) is all that is read. Caps at the sizes
# common servers accept: nginx's large_client_header_buffers line (8 KiB) is far beyond
# any status line, and Node.js's default --max-http-header-size is 16 KiB.
MAX_STATUS_LINE_BYTES = 1024
MAX_HEAD_BYTES = 16 * 1024
_RECEIVE_BYTES = 4096
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.[0-9] ([1-9][0-9]{2})(?:[ \t][^\r\n]*)?\r?\n")


class ExchangeFailed(Exception):
    """No status came back; `str()` is a short, safe lastError (never the URL's secrets or a body)."""

    def __init__(self, reason: str, connected: bool = True) -> None:
        super().__init__(reason)
        self.connected = connected  # False: nothing was sent, another address may be tried


class Deadline:
    """The end of one attempt, on the monotonic clock."""

    def __init__(self, seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._now = now
        self._end = now() + seconds

    def left(self) -> float:
        """Seconds left, as a socket timeout; ExchangeFailed once none are."""
        left = self._end - self._now()
        if left <= 0:
            raise self.passed()
        return left

    def passed(self) -> ExchangeFailed:
        return ExchangeFailed(f"no complete answer within {self.seconds:g}s")


def exchange(
    address: IPAddress,
    port: int,
    request: bytes,
    deadline: Deadline,
    connect_seconds: float,
    tls: tuple[ssl.SSLContext, str] | None = None,
) -> int:
    """Send `request` to `address`:`port` (over TLS with `tls` = (context, server name)) and
    return the answer's status code, skipping 1xx interim answers; ExchangeFailed otherwise."""
    connection = _connect(address, port, deadline, connect_seconds)
    try:
        if tls is not None:
            connection = _wrap(connection, tls, deadline)  # the wrapper owns the socket from here on
            connection.do_handshake()  # CPython bounds the whole handshake by the socket timeout
        _send(connection, request, deadline)
        return _read_status(connection, deadline)
    except socket.timeout:
        raise deadline.passed() from None
    except ssl.SSLError as exc:
        raise ExchangeFailed(f"TLS failed: {exc}") from None
    except OSError as exc:
        raise ExchangeFailed(f"request failed ({type(exc).__name__})") from None
    finally:
        connection.close()


def _connect(address: IPAddress, port: int, deadline: Deadline, connect_seconds: float) -> socket.socket:
    timeout = min(connect_seconds, deadline.left())
    try:
        return socket.create_connection((str(address), port), timeout=timeout)
    except ConnectionRefusedError:
        raise ExchangeFailed("connection refused", connected=False) from None
    except socket.timeout:
        raise ExchangeFailed(f"could not connect within {timeout:g}s", connected=False) from None
    except OSError:
        raise ExchangeFailed("could not connect", connected=False) from None


def _wrap(connection: socket.socket, tls: tuple[ssl.SSLContext, str], deadline: Deadline) -> ssl.SSLSocket:
    """TLS with the certificate verified for the URL's host, which is also sent as SNI."""
    context, server_name = tls
    wrapped = context.wrap_socket(connection, server_hostname=server_name, do_handshake_on_connect=False)
    wrapped.settimeout(deadline.left())
    return wrapped


def _send(connection: socket.socket, data: bytes, deadline: Deadline) -> None:
    view = memoryview(data)
    while view:
        connection.settimeout(deadline.left())
        view = view[connection.send(view) :]


def _read_status(connection: socket.socket, deadline: Deadline) -> int:
    """The status of the first final (non-1xx) answer, once its whole head has arrived."""
    received = b""
    while True:
        end = _HEAD_END.search(received)
        _check_size(received[: end.end()] if end else received)
        if end is None:
            received += _receive(connection, deadline)
            continue
        head, received = received[: end.end()], received[end.end() :]
        status = _STATUS_LINE.match(head)
        if status is None:
            raise ExchangeFailed("not an HTTP/1.x answer")
        if not 100 <= int(status.group(1)) < 200:
            return int(status.group(1))


def _check_size(head: bytes) -> None:
    """`head`: the answer's head so far, or all of it."""
    line_end = head.find(b"\n")
    if (line_end if line_end >= 0 else len(head)) > MAX_STATUS_LINE_BYTES:
        raise ExchangeFailed(f"status line longer than {MAX_STATUS_LINE_BYTES} bytes")
    if len(head) > MAX_HEAD_BYTES:
        raise ExchangeFailed(f"answer head longer than {MAX_HEAD_BYTES // 1024} KiB")


def _receive(connection: socket.socket, deadline: Deadline) -> bytes:
    connection.settimeout(deadline.left())
    chunk = connection.recv(_RECEIVE_BYTES)
    if not chunk:
        raise ExchangeFailed("connection closed before a response")
    return chunk
