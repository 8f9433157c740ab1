"""`make dev-localstack` (scripts/dev-localstack.sh): `make dev` on LocalStack, one command in, one Ctrl-C out.

Starts and stops a LocalStack of its own, so it runs only where none is
running: `make test-localstack` runs it last, after its shared LocalStack has
stopped (DELINEATE_DEV_LOCALSTACK=1); skipped elsewhere.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from chalicelib.local.processes import PROJECT_DIR, free_port
from chalicelib.polling import wait_until
from tests.support.devstack import FAST_FILES, poll_until_terminal, start_dev_stack

pytestmark = pytest.mark.skipif(
    os.environ.get("DELINEATE_DEV_LOCALSTACK") != "1", reason="starts its own LocalStack: make test-localstack"
)
SCRIPT = PROJECT_DIR / "scripts" / "dev-localstack.sh"
LOCALSTACK = PROJECT_DIR / "scripts" / "localstack.sh"


def test_one_job_runs_to_completion_and_sigint_stops_every_process_it_started(tmp_path):
    localstack_port = free_port()
    stack = start_dev_stack(
        tmp_path,
        timeout=180,  # LocalStack's start and the CloudFormation deploy come first
        command=["bash", str(SCRIPT)],
        **{**FAST_FILES, "LOCAL_CONSUMERS": "1", "LOCALSTACK_PORT": str(localstack_port)},
    )
    try:
        # The runner, LocalStack (+ DynamoDB Local), the API, one consumer and the sweeper.
        assert len(stack.leftover_pids()) >= 6
        assert f"127.0.0.1:{localstack_port}" in stack.stack_env()["AWS_ENDPOINT_URL"]

        response = requests.post(stack.url("/v1/download/initiate"), json={"file_ids": [70000]}, timeout=10)
        assert response.status_code == 202, response.text
        final, _ = poll_until_terminal(stack, response.json()["jobId"], timeout=90)
        assert (final["status"], final["availableFiles"]) == ("completed", 1)
    finally:
        stack.stop(timeout=60)

    try:
        wait_until(lambda: not stack.leftover_pids(), timeout=30, what="every process dev-localstack started to exit")
        assert stack.leftover_pids() == []
    finally:
        subprocess.run([str(LOCALSTACK), "stop"], check=False)  # a leaked LocalStack must not outlive the test
