"""A loopback HTTP proxy in front of one origin (the API or the emulator) that injects faults on cue.

Real sockets, real upstream answers: a rule picks requests (method, path, headers) and, for its first
`times` matches, answers itself (e.g. 503 + Retry-After, S3's expired-URL 403), drops the connection
before or in the middle of the upstream answer, or alters the answer (flips a byte, patches JSON).
`rewrite` replaces strings in answers that are not cut or corrupted: pointing the API's presigned URLs
at a second proxy in front of the emulator puts the bytes through it too.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade", "trailer"}

EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires></Error>"
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)
    answer_status: int | None = None  # what the upstream answered (None when the proxy answered itself)
    answer: bytes = field(default=b"", repr=False)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass
class Rule:
    match: Callable[[Seen], bool]
    fault: str  # respond | drop_before_answer | cut_after | corrupt | patch_json | long_poll | no_long_poll
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut_after: int = 0
    patch: Callable[[dict], dict] | None = None


def path_starts(prefix: str, method: str | None = None) -> Callable[[Seen], bool]:
    return lambda seen: seen.path.startswith(prefix) and (method is None or seen.method == method)


class FaultProxy:
    def __init__(self, upstream: str, rewrite: dict[str, str] | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.rewrite = dict(rewrite or {})
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, match: Callable[[Seen], bool], fault: str, **options) -> Rule:
        rule = Rule(match, fault, **options)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()

    def requests(self, method: str | None = None, prefix: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(prefix) and (method is None or s.method == method)]

    def _take(self, seen: Seen) -> Rule | None:
        with self._lock:
            self.seen.append(seen)
            for rule in self.rules:
                if rule.times > 0 and rule.match(seen):
                    rule.times -= 1
                    seen.fault = rule.fault
                    return rule
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        """`_Handler` bound to this proxy: http.server makes one handler per request from a class."""
        return type("BoundHandler", (_Handler,), {"proxy": self})

    def _rewritten(self, data: bytes, headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
        """The answer with every `rewrite` string replaced, in the body and the header values."""
        for old, new in self.rewrite.items():
            data = data.replace(old.encode(), new.encode())
            headers = [(k, v.replace(old, new)) for k, v in headers]
        return data, headers


def _altered(rule: Rule | None, data: bytes) -> bytes:
    """The upstream body as a `corrupt` rule (last byte flipped) or a `patch_json` rule leaves it."""
    if rule and rule.fault == "corrupt" and data:
        return data[:-1] + bytes([data[-1] ^ 0xFF])
    if rule and rule.fault == "patch_json":
        return json.dumps(rule.patch(json.loads(data))).encode()
    return data


def _requested_wait(seen: Seen) -> int:
    """N of `Prefer: wait=N`, at most 20 (the server's cap); 0 when not asked."""
    prefer = seen.header("Prefer") or ""
    wait = int(prefer.partition("wait=")[2] or 0) if "wait=" in prefer else 0
    return min(wait, 20)


def _strong_etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class _Handler(BaseHTTPRequestHandler):
    """One request through the proxy: answered by a matching rule, or forwarded and maybe altered."""

    protocol_version = "HTTP/1.1"
    proxy: FaultProxy  # set by FaultProxy._handler_class

    def log_message(self, *args) -> None:
        pass

    def _any(self) -> None:
        seen, headers = self._read_request()
        rule = self.proxy._take(seen)
        self.close_connection = True
        if rule and rule.fault == "respond":
            return self._answer(rule.status, list(rule.headers.items()), rule.body)
        if rule and rule.fault == "long_poll":
            return self._long_poll(seen, headers)
        status, out_headers, data = self._forward(seen, headers)
        if rule and rule.fault == "drop_before_answer":
            return self._drop()
        if rule and rule.fault == "cut_after":
            return self._cut(status, out_headers, data, rule.cut_after)
        if rule and rule.fault == "no_long_poll":  # as a server without ETags or Prefer: wait answers
            out_headers = [(k, v) for k, v in out_headers if k.lower() not in ("etag", "preference-applied")]
        data = _altered(rule, data)
        if not (rule and rule.fault == "corrupt"):
            data, out_headers = self.proxy._rewritten(data, out_headers)
        self._answer(status, out_headers, data)

    def _read_request(self) -> tuple[Seen, dict[str, str]]:
        """The request as seen (hop-by-hop headers and Host left out) and the headers to forward."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        return Seen(self.command, self.path, headers, body), headers

    def _upstream(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.proxy.upstream_host, self.proxy.upstream_port, timeout=60)

    def _forward(self, seen: Seen, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) of the origin's answer to the request; recorded on `seen` too."""
        upstream = self._upstream()
        headers["Host"] = f"{self.proxy.upstream_host}:{self.proxy.upstream_port}"
        try:
            upstream.request(self.command, self.path, body=seen.body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            status, out_headers = response.status, response.getheaders()
            seen.answer_status, seen.answer = status, data
        finally:
            upstream.close()
        return status, out_headers, data

    def _long_poll(self, seen: Seen, headers: dict[str, str]) -> None:
        """The specified long-poll: a strong ETag; `If-None-Match` + `Prefer: wait=N` holds the request
        until the document changes (200) or N s pass (304), with `Preference-Applied: wait=N`."""
        wait = _requested_wait(seen)
        held_until = time.monotonic() + wait
        while True:
            status, out_headers, data = self._status_document(headers)
            etag = _strong_etag(data)
            unchanged = status == 200 and seen.header("If-None-Match") == etag
            if not (unchanged and wait and time.monotonic() < held_until):
                break
            time.sleep(0.1)
        seen.answer_status = 304 if unchanged else status
        out_headers.append(("ETag", etag))
        if wait:
            out_headers.append(("Preference-Applied", f"wait={wait}"))
        self._answer(304 if unchanged else status, out_headers, b"" if unchanged else data)

    def _status_document(self, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """The origin's answer to a GET of this path, without its Retry-After (a long-poll replaces it)."""
        upstream = self._upstream()
        try:
            upstream.request("GET", self.path, headers={**headers, "Host": "upstream"})
            response = upstream.getresponse()
            data, status = response.read(), response.status
            out_headers = [(k, v) for k, v in response.getheaders() if k.lower() != "retry-after"]
        finally:
            upstream.close()
        return status, out_headers, data

    def _head(self, status: int, headers: list[tuple[str, str]], length: int) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP | {"date", "server"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()

    def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self._head(status, headers, len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def _cut(self, status: int, headers: list[tuple[str, str]], data: bytes, after: int) -> None:
        """Announces the whole body, sends its first `after` bytes, then drops the connection."""
        self._head(status, headers, len(data))
        self.wfile.write(data[:after])
        self.wfile.flush()
        self._drop()

    def _drop(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _any
