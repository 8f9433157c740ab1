"""The embedded emulator of `make dev`: moto's server, with DynamoDB requests taken one at a time.

moto rolls a failed TransactWriteItems back by restoring a copy of the whole
table taken before it began, so any write another request thread made in
between is undone too. The worker's conditional transactions fail by design
(a file already counted, a job cancelled), so under concurrent consumers a
failed count could silently undo a cancel or another file's count. Real
DynamoDB isolates transactions; serialising the emulator's DynamoDB requests
restores that isolation (SQS and S3, and so long polls, stay concurrent).

Run as its own process: python -m chalicelib.local.emulator -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import threading
from typing import Any

from moto import server
from moto.dynamodb.responses import DynamoHandler

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _one_at_a_time(self: DynamoHandler) -> Any:
    with _dynamodb:
        return _call_action(self)


def main() -> None:
    DynamoHandler.call_action = _one_at_a_time  # type: ignore[method-assign]
    server.main()


if __name__ == "__main__":
    main()
