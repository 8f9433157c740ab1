"""What every check shares: the endpoint, one LocalStack-only session, the stack's outputs, and a step runner."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from urllib.parse import urlparse

import localstack_client.session

REGION = "us-east-1"
# LocalStack ignores secrets; "test" is its documented dummy value. Passed to
# clients explicitly so a developer's real credentials are never picked up.
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Smoke:
    def __init__(self, endpoint: str, stack_name: str):
        self.endpoint = endpoint
        self.stack_name = stack_name
        # localstack-client maps every service to the LocalStack gateway, so the
        # checks cannot reach a real AWS endpoint by accident.
        self.session = localstack_client.session.Session(
            region_name=REGION, localstack_host=urlparse(endpoint).netloc, **CREDENTIALS
        )
        self.outputs: dict[str, str] = {}
        self.failures: list[str] = []
        self.passed = 0
        self.timings: dict[str, float] = {}
        self.multipart_bytes = b""  # written by the multipart check, read back through a presigned URL

    def client(self, service: str, **kwargs):
        return self.session.client(service, **kwargs)

    def step(self, name: str, check: Callable[[Smoke], str | None]) -> bool:
        started = time.monotonic()
        try:
            note = check(self)
        except Exception as exc:  # report every failing step, then exit non-zero
            self.failures.append(name)
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            if not isinstance(exc, (AssertionError, TimeoutError)):
                traceback.print_exc(limit=3)
            return False
        elapsed = time.monotonic() - started
        self.timings[name] = elapsed
        self.passed += 1
        print(f"ok   {name} ({elapsed:.2f}s){': ' + note if note else ''}")
        return True

    def summary(self) -> str:
        slow = ", ".join(f"{k}={v:.1f}s" for k, v in self.timings.items() if v >= 0.5)
        return f"timings: {slow}\n{self.passed} passed, {len(self.failures)} failed"
