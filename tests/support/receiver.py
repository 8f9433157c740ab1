"""A real webhook receiver on loopback: records every delivery and answers as a test tells it to.

    with WebhookReceiver() as receiver:
        receiver.fail_first(2)                  # 500, 500, then 204
        receiver.dribble(0.5, count=1)          # the first answer one byte every 0.5 s, without end
        ...deliver to receiver.url("/hooks")...
        [delivery] = receiver.wait_for(1, timeout=5)

Deliveries are recorded before the answer is written, so a test that waits
for N deliveries sees the Nth even when the answer is a hang. A hang is
bounded (`hang_seconds`) and released by `stop()`, so a test never outlives it;
so is a dribble, which also ends when the client closes the connection.
"""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    method: str
    path: str
    headers: dict[str, str]  # header names lower-cased
    body: bytes
    server_name: str | None  # the TLS SNI the client sent, if TLS


@dataclass(frozen=True)
class _Answer:
    status: int
    location: str | None = None
    hang_seconds: float = 0.0
    raw: bytes | None = None  # written as the whole answer instead
    dribble_seconds: float | None = None  # seconds per byte of an answer that never ends


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: "WebhookReceiver"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        sni = getattr(self.connection, "sni_name", None)
        delivery = Delivery("POST", self.path, {name.lower(): value for name, value in self.headers.items()}, body, sni)
        answer = self.server.receiver._record(delivery)
        if answer.hang_seconds:
            self.server.receiver._released.wait(answer.hang_seconds)
        try:
            if answer.dribble_seconds is not None:
                self._dribble(answer.status, answer.dribble_seconds)
            elif answer.raw is not None:
                self.wfile.write(answer.raw)
            else:
                self._answer(answer)
        except OSError:
            pass  # the client gave up (a timeout test): nothing to answer
        self.close_connection = True

    def _answer(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        if answer.location:
            self.send_header("Location", answer.location)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def _dribble(self, status: int, seconds_per_byte: float) -> None:
        """A status line, then a header that never ends, one byte at a time until the client hangs up."""
        start = f"HTTP/1.1 {status} OK\r\nX-Dribble: ".encode("ascii")
        for byte in itertools.chain(start, itertools.repeat(ord("."))):
            if self.server.receiver._released.wait(seconds_per_byte):
                return
            self.wfile.write(bytes([byte]))

    do_GET = do_POST  # a followed redirect would arrive as a GET: record it too

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        self._condition = threading.Condition()
        self._deliveries: list[Delivery] = []
        self._released = threading.Event()
        self._status = 204
        self._fail_first = 0
        self._fail_status = 500
        self._redirect: str | None = None
        self._hang_seconds = 0.0
        self._raw: bytes | None = None
        self._dribble_seconds = 0.0
        self._dribble_count = 0
        self._server = _Server((host, 0), _Handler)
        self._server.receiver = self
        if ssl_context is not None:
            ssl_context.sni_callback = _remember_sni
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver", daemon=True
        )
        self.host = host
        self.port = self._server.server_address[1]

    # --- lifecycle

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def url(self, path: str = "/hooks", host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    # --- behaviour

    def fail_first(self, count: int, status: int = 500) -> None:
        """Answer `status` to the next `count` requests, then 2xx."""
        with self._condition:
            self._fail_first, self._fail_status = count, status

    def fail_always(self, status: int = 500) -> None:
        self.fail_first(10**9, status)

    def redirect_to(self, location: str, status: int = 302) -> None:
        with self._condition:
            self._status, self._redirect = status, location

    def hang(self, seconds: float) -> None:
        """Answer only after `seconds` (or at stop()): past a client's read timeout."""
        with self._condition:
            self._hang_seconds = seconds

    def dribble(self, seconds_per_byte: float, count: int = 10**9) -> None:
        """Answer the next `count` requests one byte every `seconds_per_byte`, a head that never ends."""
        with self._condition:
            self._dribble_seconds, self._dribble_count = seconds_per_byte, count

    def answer_raw(self, raw: bytes) -> None:
        """Write `raw` as the whole answer (a malformed or oversized head)."""
        with self._condition:
            self._raw = raw

    def release(self) -> None:
        """End every hang and dribble now, as stop() does, and answer the rest at once."""
        with self._condition:
            self._hang_seconds = 0.0
        self._released.set()

    # --- observation

    @property
    def deliveries(self) -> list[Delivery]:
        with self._condition:
            return list(self._deliveries)

    def wait_for(self, count: int, timeout: float) -> list[Delivery]:
        """The first `count` deliveries, once they have arrived; AssertionError after `timeout` seconds."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._deliveries) >= count, timeout):
                raise AssertionError(f"expected {count} deliveries within {timeout}s, got {len(self._deliveries)}")
            return list(self._deliveries[:count])

    def _record(self, delivery: Delivery) -> _Answer:
        with self._condition:
            self._deliveries.append(delivery)
            self._condition.notify_all()
            if self._dribble_count > 0:
                self._dribble_count -= 1
                return _Answer(self._status, dribble_seconds=self._dribble_seconds)
            if self._fail_first > 0:
                self._fail_first -= 1
                return _Answer(self._fail_status, hang_seconds=self._hang_seconds)
            return _Answer(self._status, self._redirect, self._hang_seconds, self._raw)


def _remember_sni(connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
    connection.sni_name = server_name  # type: ignore[union-attr]


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
