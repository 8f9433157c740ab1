"""What /app tells a user when the API cannot help: unknown jobs, rate limits, outages."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
import requests

from chalicelib.polling import wait_until
from tests.browser.app_page import AppPage
from tests.support.devstack import DevStack


@pytest.fixture
def app(page, dev_stack) -> AppPage:
    return AppPage(page, dev_stack)


def exhaust_rate_limit(stack: DevStack, seconds_left: int = 5) -> int:
    """Spends this client's quota in a window with at least `seconds_left` to run; returns its Retry-After."""

    def limited_long_enough() -> int:
        response = requests.get(stack.url("/"), timeout=10)
        retry_after = int(response.headers.get("Retry-After", 0)) if response.status_code == 429 else 0
        return retry_after if retry_after >= seconds_left else 0

    return wait_until(limited_long_enough, timeout=60, interval=0.02, what="the rate limit to be exhausted")


def quota_is_back(stack: DevStack) -> bool:
    return requests.get(stack.url("/"), timeout=10).status_code == 200


def test_an_unknown_job_in_the_address_is_reported_plainly(app):
    app.open(f"?job={uuid.uuid4()}")

    kind, text = app.wait_for_notice("There is no job")
    assert kind == "error"
    assert app.driver.find_element("id", "start-view").is_displayed()
    assert app.console_problems(allowed_statuses=(404,)) == []


def test_a_malformed_job_id_in_the_address_is_reported_without_asking_the_api(app):
    app.open("?job=not-a-job")

    kind, text = app.wait_for_notice("is not a job id")
    assert kind == "error" and '"not-a-job"' in text
    assert app.console_problems() == []


def test_a_rate_limited_start_says_when_to_retry_and_a_retry_then_works(app, dev_stack):
    app.open()
    app.wait(lambda d: app.shown("file-ids"), what="the start form")
    exhaust_rate_limit(dev_stack)

    app.start("70070 70077")

    kind, text = app.wait_for_notice("Too many requests")
    assert kind == "warn" and "before starting the download" in text
    assert app.driver.current_url.endswith("/app")
    wait_until(lambda: quota_is_back(dev_stack), timeout=20, interval=0.5, what="the next rate-limit window")
    app.start("70070 70077")
    app.job_id_in_url()
    assert app.wait_for_status("completed") == "completed"
    assert app.console_problems(allowed_statuses=(429,)) == []


def test_an_outage_is_reported_while_it_lasts_and_the_job_finishes_after(app, dev_stack):
    app.open().start("70084 70091")
    app.job_id_in_url()
    app.wait_for_status("queued", "processing")
    emulator = dev_stack.emulator_pid()

    os.kill(emulator, signal.SIGSTOP)
    try:
        kind, text = app.wait_for_notice("temporarily unavailable", timeout=30)
    finally:
        os.kill(emulator, signal.SIGCONT)

    assert kind == "error" and "Trying again in" in text
    assert app.wait_for_status("completed", timeout=90) == "completed"
    assert app.notice()[0] == "ok"
    assert app.console_problems(allowed_statuses=(503,)) == []
