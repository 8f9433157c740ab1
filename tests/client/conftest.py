"""The client against the real dev stack over HTTP, with fault proxies in front of the API and the emulator.

`api` is the URL the client talks to: a FaultProxy in front of `chalice local` that rewrites the presigned
URLs in its answers to a second FaultProxy in front of the emulator, so tests can break either leg.
The stack behind them is the session's `dev_stack` (tests/conftest.py), the one tests/e2e uses.
"""

from __future__ import annotations

import pytest

from tests.support.faultproxy import FaultProxy


@pytest.fixture(scope="session")
def _proxies(dev_stack):
    emulator = dev_stack.stack_env()["AWS_ENDPOINT_URL"].rstrip("/")
    with FaultProxy(emulator) as storage:
        with FaultProxy(dev_stack.base_url, rewrite={emulator: storage.url}) as api:
            yield api, storage


@pytest.fixture
def api_proxy(_proxies):
    api, storage = _proxies
    api.reset()
    storage.reset()
    return api


@pytest.fixture
def storage_proxy(_proxies, api_proxy):
    return _proxies[1]


@pytest.fixture
def api(api_proxy):
    """The base URL clients use: the API through the proxies."""
    return api_proxy.url
