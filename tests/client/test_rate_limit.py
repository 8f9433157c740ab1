"""429 from a real stack that rate-limits (4 requests per 3 s window): the client waits out Retry-After."""

from __future__ import annotations

import httpx
import pytest
from delineate_client import Client, RateLimited, RetryPolicy

from chalicelib.polling import wait_until
from tests.support.devstack import FAST_FILES, start_dev_stack
from tests.support.faultproxy import FaultProxy

LIMITED = {**FAST_FILES, "RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_MAX_REQUESTS": "4", "RATE_LIMIT_WINDOW_MS": "3000"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("limited-devstack"), **LIMITED)
    try:
        with FaultProxy(stack.base_url) as proxy:
            yield proxy
    finally:
        stack.stop()


def exhaust(url: str) -> None:
    """Spends the window's requests and returns with at least 1 s of it left (Retry-After >= 2, rounded
    up), so the test's next request is refused too; one near the window's end could land in the next."""

    def refused_for_a_while() -> bool:
        response = httpx.get(f"{url}/health")
        return response.status_code == 429 and int(response.headers["Retry-After"]) >= 2

    wait_until(refused_for_a_while, timeout=15, interval=0.01, what="a 429 with time left in the window")


def test_429_on_initiate_is_retried_with_the_same_key_and_the_job_completes(limited, tmp_path):
    limited.reset()
    exhaust(limited.url)
    with Client(limited.url) as client:
        job = client.begin_download([70000, 70007])
        result = job.wait(timeout=90).download(tmp_path / "bundle.zip")
    posts = limited.requests("POST", "/v1/download/initiate")
    assert posts[0].answer_status == 429 and posts[-1].answer_status == 202
    assert {seen.answer_status for seen in posts[:-1]} == {429}
    assert len({seen.header("Idempotency-Key") for seen in posts}) == 1
    assert result.size == job.document["size"]
    assert posts[1].at - posts[0].at >= 0.95  # waited the Retry-After (at least 1 s) before retrying


def test_a_retry_after_longer_than_the_client_allows_raises_rate_limited(limited):
    limited.reset()
    exhaust(limited.url)
    with Client(limited.url, retry=RetryPolicy(max_delay=0.5)) as client:
        with pytest.raises(RateLimited) as caught:
            client.begin_download([70000])
    assert caught.value.status == 429 and caught.value.retry_after >= 1
    assert len(limited.requests("POST", "/v1/download/initiate")) == 1
