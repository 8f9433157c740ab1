"""The /app page as a test sees it: what a user reads and clicks, and explicit waits with deadlines."""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, TypeVar

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.devstack import DevStack

T = TypeVar("T")
JOB_URL = re.compile(r"/app\?job=([0-9a-f-]{36})$")


class AppPage:
    def __init__(self, driver: WebDriver, stack: DevStack) -> None:
        self.driver, self.stack = driver, stack

    def open(self, query: str = "") -> AppPage:
        self.driver.get(self.stack.url("/app" + query))
        return self

    def wait(self, condition: Callable[[WebDriver], T], timeout: float = 30, what: str = "") -> T:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message=what)

    # -- what the user does -------------------------------------------------------------------

    def start(self, file_ids: str) -> None:
        field = self.wait(lambda d: self.shown("file-ids"), what="the start form")
        field.clear()
        field.send_keys(file_ids)
        self.driver.find_element(By.ID, "start-button").click()

    def verify_all(self) -> None:
        self.wait(lambda d: self.shown("verify-all"), what="the verify-all button").click()

    def cancel(self) -> None:
        self.wait(lambda d: self.shown("cancel-button"), what="the cancel button").click()

    # -- what the user sees -------------------------------------------------------------------

    def shown(self, element_id: str):
        element = self.driver.find_element(By.ID, element_id)
        return element if element.is_displayed() else None

    def job_id_in_url(self, timeout: float = 15) -> str:
        match = self.wait(lambda d: JOB_URL.search(d.current_url), timeout, "the job id in the address")
        return match.group(1)

    def status(self) -> str:
        view = self.driver.find_element(By.ID, "job-view")
        return (view.get_attribute("data-status") or "") if view.is_displayed() else ""

    def wait_for_status(self, *statuses: str, timeout: float = 60) -> str:
        return self.wait(lambda d: self.status() in statuses and self.status(), timeout, f"job status in {statuses}")

    def source(self) -> str:
        """How the page follows the job: "stream" (EventSource) or "poll"."""
        return self.driver.find_element(By.ID, "job-view").get_attribute("data-source") or ""

    def requests_to(self, path_part: str) -> list[str]:
        """URLs the page has requested (Resource Timing) that contain `path_part`."""
        names = self.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        return [name for name in names if path_part in name]

    def progress(self) -> int:
        return int(self.driver.find_element(By.ID, "progress").get_attribute("value") or 0)

    def file_states(self) -> dict[int, str]:
        tiles = self.driver.find_elements(By.CSS_SELECTOR, "#files li[data-file-id]")
        return {int(tile.get_attribute("data-file-id")): tile.get_attribute("data-status") for tile in tiles}

    def file_counts(self) -> Counter:
        return Counter(self.file_states().values())

    def notice(self) -> tuple[str, str]:
        """(kind, text) of the message box; ("", "") while it is hidden."""
        box = self.driver.find_element(By.ID, "notice")
        return (box.get_attribute("data-kind") or "", box.text) if box.is_displayed() else ("", "")

    def wait_for_notice(self, pattern: str, timeout: float = 30) -> tuple[str, str]:
        return self.wait(
            lambda d: re.search(pattern, self.notice()[1]) and self.notice(), timeout, f"a message matching {pattern!r}"
        )

    def download_link(self):
        return self.shown("download-link")

    def volume_items(self) -> list[tuple[str, str]]:
        """(link, digest text) of each zip the page lists for a job split into volumes."""
        listed = self.shown("volumes")
        if listed is None:
            return []
        items = listed.find_elements(By.TAG_NAME, "li")
        return [
            (i.find_element(By.TAG_NAME, "a").get_attribute("href"), i.find_element(By.TAG_NAME, "code").text)
            for i in items
        ]

    def volume_checks(self) -> list[str]:
        """Each listed zip's check, as the page states it: "verified", "mismatch", "error", "checking", ..."""
        checks = self.driver.find_elements(By.CSS_SELECTOR, "#volumes li .check")
        return [check.get_attribute("data-state") or "" for check in checks]

    def wait_for_checks(self, timeout: float = 30) -> list[str]:
        """Until every zip's check has ended (verified, mismatch or error) and the buttons are usable again."""

        def ended() -> list[str] | None:
            checks = self.volume_checks()
            done = checks and all(state in ("verified", "mismatch", "error") for state in checks)
            return checks if done and self.driver.find_element(By.ID, "verify-all").is_enabled() else None

        return self.wait(lambda d: ended(), timeout, "every zip's check to end")

    def volume_check_texts(self) -> list[str]:
        return [check.text for check in self.driver.find_elements(By.CSS_SELECTOR, "#volumes li .check")]

    def console_problems(self, allowed_statuses: tuple[int, ...] = ()) -> list[dict]:
        """Console entries at SEVERE (script errors, CSP violations, failed loads) the test did not expect.

        Chromium logs every 4xx/5xx answer to fetch() as a failed load, so a test
        provoking one lists its status as allowed.
        """
        problems = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            expected = entry.get("source") == "network" and any(
                f"status of {status} " in entry["message"] for status in allowed_statuses
            )
            if not expected:
                problems.append(entry)
        return problems
