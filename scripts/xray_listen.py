"""A stand-in for the X-Ray daemon on loopback: receives the segments the dev stack
emits and prints each trace as a tree, so a trace can be read without an AWS account.

    .venv/bin/python scripts/xray_listen.py --port 2000 --seconds 60 [--json build/trace.json]
    AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000 make dev      # in another terminal

The SDK sends one UDP datagram per (sub)segment: a JSON header line, then the
document. Segments of one trace arrive from several processes (API, consumers).
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path


def receive(port: int, seconds: float) -> list[dict]:
    documents = []
    deadline = time.monotonic() + seconds
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                datagram = sock.recv(65535)
            except socket.timeout:
                break
            document = parse_datagram(datagram)
            if document is not None:
                documents.append(document)
    return documents


def parse_datagram(datagram: bytes) -> dict | None:
    """The (sub)segment document after the daemon header line, or None for anything else."""
    _, _, body = datagram.decode("utf-8", "replace").partition("\n")
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


class SegmentListener(threading.Thread):
    """Collects segments in the background on a free loopback port (tests and `make bench`)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.documents: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                document = parse_datagram(self.sock.recv(65535))
            except socket.timeout:
                continue
            if document is not None:
                self.documents.append(document)

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.sock.close()


def _line(entity: dict, depth: int) -> str:
    duration = (entity.get("end_time", entity["start_time"]) - entity["start_time"]) * 1000
    annotations = entity.get("annotations") or {}
    extra = " ".join(f"{key}={value}" for key, value in annotations.items())
    aws = entity.get("aws") or {}
    operation = aws.get("operation", "")
    label = f"{entity['name']}" + (f" {operation}" if operation else "")
    return f"{'  ' * depth}- {label} ({duration:.0f} ms){' ' + extra if extra else ''}"


def render(documents: list[dict]) -> str:
    """Trees by parent_id: segments that continue another process's segment hang under it."""
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for document in documents:
        by_trace[document["trace_id"]].append(document)
    out = []
    for trace_id, segments in by_trace.items():
        entities: dict[str, dict] = {}
        children: dict[str | None, list[dict]] = defaultdict(list)
        for segment in segments:
            _index(segment, segment.get("parent_id"), entities, children)
        roots = [entity for parent, items in children.items() if parent not in entities for entity in items]
        out.append(f"trace {trace_id}: {len(segments)} segments")
        for root in sorted(roots, key=lambda item: item["start_time"]):
            _walk(root, 1, children, out)
    return "\n".join(out)


def _index(entity: dict, parent: str | None, entities: dict, children: dict) -> None:
    entities[entity["id"]] = entity
    children[parent].append(entity)
    for sub in entity.get("subsegments", []):
        _index(sub, entity["id"], entities, children)


def _walk(entity: dict, depth: int, children: dict, out: list[str]) -> None:
    out.append(_line(entity, depth))
    for child in sorted(children.get(entity["id"], []), key=lambda item: item["start_time"]):
        _walk(child, depth + 1, children, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path, help="also write the raw segment documents here")
    args = parser.parse_args()
    documents = receive(args.port, args.seconds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(documents, indent=1))
    print(render(documents))


if __name__ == "__main__":
    main()
