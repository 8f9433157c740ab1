"""`chalice local` with a listen backlog that survives a burst of clients.

chalice's ThreadedHTTPServer keeps socketserver's default backlog of 5
connections: when more clients connect at once than the accept loop takes
in, the kernel drops or resets the rest and clients see "connection reset by
peer". API Gateway has no such limit, so the dev server should not add one.
Its request handler also leaves Nagle's algorithm on: the headers and the body
go out in two writes, and the second waits for the client's delayed ACK of the
first, adding about 40 ms to every response on loopback. API Gateway adds no
such delay, so the dev server sets TCP_NODELAY, and buffers each response so
its headers and body leave in one write rather than one per header line.
Everything else is chalice's own CLI, so `make dev` still runs `chalice local`.

Run: python -m chalicelib.local.api local --host 127.0.0.1 --port 8000 ...
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

LISTEN_BACKLOG = 512
RESPONSE_BUFFER_BYTES = 64 * 1024

if __name__ == "__main__":
    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    local.ChaliceRequestHandler.disable_nagle_algorithm = True
    local.ChaliceRequestHandler.wbufsize = RESPONSE_BUFFER_BYTES
    sys.argv[0] = "chalice"
    sys.exit(main())
