"""The embedded emulator of `make dev`: moto's server, with DynamoDB requests taken one at a time.

moto rolls a failed TransactWriteItems back by restoring a copy of the whole
table taken before it began, so any write another request thread made in
between is undone too. The worker's conditional transactions fail by design
(a file already counted, a job cancelled), so under concurrent consumers a
failed count could silently undo a cancel or another file's count. Real
DynamoDB isolates transactions; serialising the emulator's DynamoDB requests
restores that isolation (SQS and S3, and so long polls, stay concurrent).

Copying the whole table also made every transaction cost O(table): a job's
count got slower with every file item already stored, so a 1,000-file job ran
at 2.5x its ideal wall time. With requests serialised nothing can interleave,
so a transaction only has to put back the items it touched: those are
snapshotted here, and moto's own table copy is made a no-op.

A long poll should return as soon as a message becomes available, as SQS's
does; moto's wakes only when a message is sent, and otherwise rechecks once a
second, so a delayed message (a file coming due) or a retry whose visibility
lapsed was received up to a second late. Here a waiting poll rechecks every
POLL_TICK_SECONDS instead.

S3 answers CORS as S3 does: from the bucket's rules only. moto's server wraps
every service in flask-cors, which lets any origin read anything
(MOTO_DISABLE_GLOBAL_CORS turns that off), and its CloudFormation ignores a
bucket's CorsConfiguration, so here the template's rules are applied to the
bucket it creates; moto's S3 then answers preflights and GETs by them.

Run as its own process: python -m chalicelib.local.emulator -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import copy
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable

import moto.dynamodb.models as dynamodb_models
from moto import server
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server import werkzeug_app
from moto.s3.models import FakeBucket
from moto.sqs.models import Queue

POLL_TICK_SECONDS = 0.05  # a tenth of moto's one second: each tick scans the queue once per waiting poll

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action
_transact_write_items = DynamoDBBackend.transact_write_items
_create_bucket = FakeBucket.create_from_cloudformation_json


def _one_at_a_time(self: DynamoHandler) -> Any:
    with _dynamodb:
        return _call_action(self)


def _deepcopy_but_tables(value: Any, memo: dict | None = None) -> Any:
    """moto's snapshot of a whole table: the table itself, since the touched items are kept aside."""
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_key(table: Table, op_type: str, op: dict) -> tuple[DynamoType, DynamoType | None] | None:
    attributes = op.get("Item", {}) if op_type == "Put" else op.get("Key", {})
    if table.hash_key_attr not in attributes:
        return None  # moto refuses the transaction before it writes anything
    range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
    return DynamoType(attributes[table.hash_key_attr]), None if range_value is None else DynamoType(range_value)


def _snapshot(backend: DynamoDBBackend, entry: dict) -> Callable[[], None] | None:
    """What puts one item back as it was before the transaction."""
    op_type, op = next(iter(entry.items()))
    table = backend.tables.get(op.get("TableName", "")) if isinstance(op, dict) else None
    key = _item_key(table, op_type, op) if table is not None else None
    if table is None or key is None:
        return None
    hash_value, range_value = key
    before: Item | None = copy.deepcopy(table.get_item(hash_value, range_value))
    bucket: dict = table.items[hash_value] if range_value is not None else table.items
    slot = range_value if range_value is not None else hash_value

    def restore() -> None:
        if before is None:
            bucket.pop(slot, None)
        else:
            bucket[slot] = before

    return restore


def _transact_by_item(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    restores = [_snapshot(self, entry) for entry in transact_items[:100]]
    try:
        _transact_write_items(self, transact_items)
    except Exception:
        for restore in reversed(restores):
            if restore is not None:
                restore()
        raise


def _wait_for_messages(self: Queue, timeout: float) -> None:
    """moto's Queue.wait_for_messages, rechecking what is visible every tick, not only on a send."""
    deadline = time.monotonic() + timeout
    with self._messages_lock:
        while not self.messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._messages_lock.wait(min(POLL_TICK_SECONDS, remaining))


def _api_cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation CorsRule in the shape PutBucketCors's body parses to, which moto's bucket takes."""
    api = {
        "ID": rule.get("Id"),
        "AllowedMethod": rule["AllowedMethods"],
        "AllowedOrigin": rule["AllowedOrigins"],
        "AllowedHeader": rule.get("AllowedHeaders"),
        "ExposeHeader": rule.get("ExposedHeaders"),
        "MaxAgeSeconds": None if rule.get("MaxAge") is None else str(rule["MaxAge"]),
    }
    return {name: value for name, value in api.items() if value is not None}


def _bucket_with_cors(cls: type, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
    """moto's bucket from a template, with the CorsConfiguration moto's CloudFormation leaves out."""
    bucket = _create_bucket(resource_name, cloudformation_json, *args, **kwargs)
    rules = cloudformation_json.get("Properties", {}).get("CorsConfiguration", {}).get("CorsRules", [])
    if rules:
        bucket.set_cors([_api_cors_rule(rule) for rule in rules])
    return bucket


def install() -> None:
    Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign]
    DynamoHandler.call_action = _one_at_a_time  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_by_item  # type: ignore[method-assign]
    dynamodb_models.copy = SimpleNamespace(deepcopy=_deepcopy_but_tables)  # type: ignore[assignment]
    FakeBucket.create_from_cloudformation_json = classmethod(_bucket_with_cors)  # type: ignore[method-assign,assignment]
    # moto.settings read MOTO_DISABLE_GLOBAL_CORS at import; the server consults this copy per service app.
    werkzeug_app.DISABLE_GLOBAL_CORS = True


def main() -> None:
    install()
    server.main()


if __name__ == "__main__":
    main()
