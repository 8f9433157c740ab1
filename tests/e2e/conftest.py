"""The end-to-end tier: the real processes of `make dev`, driven over HTTP like a client."""

from __future__ import annotations

import pytest

from tests.support.devstack import start_dev_stack

FAST_FILES = {
    "DOWNLOAD_DELAY_MIN_MS": "200",
    "DOWNLOAD_DELAY_MAX_MS": "500",
    "LOCAL_CONSUMERS": "4",
    "RATE_LIMIT_ENABLED": "false",
    "START_WAIT_MS": "8000",
}


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("devstack"), **FAST_FILES)
    yield stack
    stack.stop()
