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

# Files take 1.5-2.5 s each on two consumers, so a job of a few files is
# observably mid-way for seconds; status asks clients to come back after 1 s.
# The rate limiter is on with a short window, so a test can exhaust it and
# wait out the rest of the window; the others stay far below the quota.
BROWSER_STACK = {
    "DOWNLOAD_DELAY_MIN_MS": "1500",
    "DOWNLOAD_DELAY_MAX_MS": "2500",
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
