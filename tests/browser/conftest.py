"""The browser tier: Debian's headless Chromium, driven by selenium through the system chromedriver,
against one real dev stack (`make dev`'s processes) per session.

Nothing here downloads a browser or a driver: the Service is given
/usr/bin/chromedriver, which makes selenium skip Selenium Manager entirely
(selenium/webdriver/common/driver_finder.py), and SE_OFFLINE keeps it offline
even if a later selenium consulted it anyway. `make browser` installs the
packages (scripts/ensure-browser.sh).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from chalicelib.local.processes import PROJECT_DIR
from tests.support.devstack import start_dev_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT_DIR = PROJECT_DIR / "build"

# A file's wait holds no worker, so a job's files all wait at once and come due
# over the spread of their delays: 1-9 s spreads a few files over seconds, and
# a stream response holds at most 1 s (LONG_POLL_MAX_SECONDS) before the page
# reconnects after 1 s, so the page sees the job mid-way, not only at its end
# (the dev server, like the gateway, delivers a response's events when it ends).
# The rate limiter is on with a short window, so a test can exhaust it and
# wait out the rest of the window; the others stay far below the quota.
BROWSER_STACK = {
    "DOWNLOAD_DELAY_MIN_MS": "1000",
    "DOWNLOAD_DELAY_MAX_MS": "9000",
    "LONG_POLL_MAX_SECONDS": "1",
    "LOCAL_CONSUMERS": "2",
    "STATUS_RETRY_AFTER_SECONDS": "1",
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_WINDOW_MS": "10000",
    "RATE_LIMIT_MAX_REQUESTS": "50",
    # A stopped emulator is a 503 within 4 s (chalicelib/aws/clients.py splits this budget).
    "REQUEST_TIMEOUT_MS": "4000",
}


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("browser-stack"), **BROWSER_STACK)
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("tests/browser needs Debian's chromium and chromium-driver: run `make browser`", pytrace=False)
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, dev_stack):
    """The browser, its console log drained, so each test reads only its own entries."""
    browser.get_log("browser")
    yield browser
    browser.get("about:blank")  # stops the page's poller before the next test


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    return SCREENSHOT_DIR
