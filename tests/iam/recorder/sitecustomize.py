"""Records every AWS call a dev process makes, for the IAM replay (tests/iam, `make test-iam`).

Python imports `sitecustomize` at start-up from the first sys.path entry that has
one; tests/iam puts this folder on PYTHONPATH of a dev stack it starts, so every
process of that stack loads it. Nothing happens unless DELINEATE_IAM_RECORD names
a folder: then each process that runs a function's code (the API, a consumer,
the sweeper: see FUNCTION_PROCESSES) appends one JSON line per AWS call to
<folder>/<module>-<pid>.jsonl.

The hook is botocore's own `before-parameter-build` event, registered last on
every new botocore Session: it fires for every client call (boto3 resources and
paginators call clients), after boto3 has turned a DynamoDB resource's Python
values and conditions into the wire form, and before the request is sent or
fails, so a refused or failing call is recorded too (AWS authorises before it
evaluates a condition expression). `generate_presigned_url` fires it as well,
with context["is_presign_request"]: a presigned URL is computed locally, but is
only valid while its signer may make the call, so it is recorded, flagged.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

RECORD_DIR = os.environ.get("DELINEATE_IAM_RECORD", "")
# The module a dev process runs -> the function (app.py handler) whose role it stands for.
FUNCTION_PROCESSES = {
    "chalicelib.local.api": "app.app",
    "chalicelib.local.consumer": "app.process_work",
    "chalicelib.local.sweeper": "app.sweep_stalled_jobs",
}
# Environment names whose values locate a resource (table, queue, bucket, secret),
# written once per process so the replay can map dev names to the template's resources.
_LOCATOR_SUFFIXES = ("_NAME", "_URL", "_ARN")
# Payloads say nothing about authorisation; left out to keep the records small.
_DROPPED = frozenset({"Body", "MessageBody", "MessageAttributes", "MessageSystemAttributes"})
_LONGEST_STRING = 300

_lock = threading.Lock()
_state: dict = {}


def _main_module() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", "") or ""


def _reduced(value):
    if isinstance(value, dict):
        return {key: _reduced(item) for key, item in value.items() if key not in _DROPPED}
    if isinstance(value, (list, tuple)):
        return [_reduced(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return "<bytes>"
    if isinstance(value, str):
        return value[:_LONGEST_STRING]
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value)[:_LONGEST_STRING]


def _write(record: dict) -> None:
    with _lock:
        path = _state.get("path")
        if path is None:
            module = _main_module()
            path = _state["path"] = os.path.join(RECORD_DIR, f"{module}-{os.getpid()}.jsonl")
            locators = {k: v for k, v in os.environ.items() if k.isupper() and k.endswith(_LOCATOR_SUFFIXES)}
            header = {"kind": "process", "module": module, "function": FUNCTION_PROCESSES[module], "env": locators}
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(header) + "\n")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")


def _record_call(params=None, model=None, context=None, **_kwargs) -> None:
    if _main_module() not in FUNCTION_PROCESSES or model is None:
        return
    try:
        service = model.service_model
        _write(
            {
                "kind": "call",
                "service": service.signing_name or service.endpoint_prefix,
                "operation": model.name,
                "presign": bool((context or {}).get("is_presign_request")),
                "params": _reduced(params or {}),
                "at": round(time.time(), 3),
            }
        )
    except Exception as exc:  # never break the process under test; the replay reports a gap instead
        sys.stderr.write(f"iam recorder: {exc!r}\n")


def _install() -> None:
    import botocore.session

    original_init = botocore.session.Session.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.get_component("event_emitter").register_last(
            "before-parameter-build", _record_call, unique_id="delineate-iam-recorder"
        )

    botocore.session.Session.__init__ = recording_init


if RECORD_DIR:
    os.makedirs(RECORD_DIR, exist_ok=True)
    _install()
