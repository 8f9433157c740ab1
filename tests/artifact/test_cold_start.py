"""What a cold start of the packaged API does: which modules it compiles, which clients it builds, and
whether it imports X-Ray. (How long it takes is a ratio in `make bench`, not a timed test.)"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.artifact.bundle import interpreter_env, python_command
from tests.artifact.cold_start import __file__ as PROBE
from tests.artifact.events import api_event


def cold_get_root(code_dir, environment: dict[str, str]) -> dict:
    result = subprocess.run(
        python_command(PROBE, str(code_dir), "--observe"),
        input=json.dumps(api_event("GET", "/")),
        env=interpreter_env(environment),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def api_env(stack, emulator) -> dict[str, str]:
    return stack.function_env("APIHandler", emulator)


def test_a_cold_get_root_compiles_nothing_builds_no_client_and_leaves_xray_alone(code_dir, api_env):
    seen = cold_get_root(code_dir, {**api_env, "RATE_LIMIT_ENABLED": "false"})

    assert seen["status"] == 200
    assert seen["compiled"] == []  # every module came from the zip's .pyc
    assert seen["sessions"] == 0 and seen["clients"] == []
    assert seen["xray"] is False


def test_with_the_rate_limiter_on_a_cold_get_root_builds_one_session_and_one_dynamodb_client(code_dir, api_env):
    seen = cold_get_root(code_dir, api_env)

    assert seen["status"] == 200
    assert seen["sessions"] == 1 and seen["clients"] == ["dynamodb"]
    assert seen["compiled"] == []


def test_with_a_daemon_address_tracing_is_on_and_the_request_still_answers(code_dir, api_env):
    # Lambda sets AWS_XRAY_DAEMON_ADDRESS when active tracing is on; nothing listens on this port.
    seen = cold_get_root(code_dir, {**api_env, "RATE_LIMIT_ENABLED": "false", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9"})

    assert seen["status"] == 200
    assert seen["xray"] is True
