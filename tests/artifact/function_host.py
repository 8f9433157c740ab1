"""Plays Lambda's Python runtime for one function: `python -S -B function_host.py <code dir> <module.handler>`.

Run in a fresh interpreter with no site-packages (-S), so the code directory
(the unpacked deployment.zip) is all it can import beyond the standard library:
boto3 is the one in the zip, as in Lambda, where /var/task precedes the
runtime's own copy. The handler is imported once, as in an execution
environment, then each line read on stdin is an event, and each answer is one
JSON line: {"result": ...} or {"error": type, "message": ...}. The function's
own stdout (its log lines) goes to stderr, so answers cannot mix with logs.

Only the standard library is imported here, before the code directory is on the path.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid


class LambdaContext:
    """The attributes Lambda's context object has (the handler may read any of them)."""

    def __init__(self, function_name: str, timeout_s: float, memory_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2024/01/01/[$LATEST]artifact"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    code_dir, handler_name = sys.argv[1], sys.argv[2]
    del sys.path[0]  # this file's directory: nothing of the test tree may be importable
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)  # Lambda's working directory is the code directory
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    module_name, _, attribute = handler_name.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    answers.write(json.dumps({"ready": True}) + "\n")
    timeout_s = float(os.environ.get("FUNCTION_TIMEOUT_SECONDS", "30"))
    memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"))
    for line in sys.stdin:
        context = LambdaContext(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function"), timeout_s, memory_mb)
        try:
            answer = {"result": handler(json.loads(line), context)}
        except Exception as exc:  # the runtime reports an unhandled error; so does this host
            traceback.print_exc()
            answer = {"error": type(exc).__name__, "message": str(exc)}
        answers.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
