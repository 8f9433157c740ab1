"""A user at /app: starts a job, watches it finish, downloads the zip, reloads, cancels."""

from __future__ import annotations

import hashlib
import io
import zipfile
from urllib.parse import unquote, urlsplit

import pytest
import requests

from tests.browser.app_page import AppPage

AVAILABLE = [70000, 70007, 70014, 70021]  # samples exist for multiples of 7 in [70000, 70100)
UNAVAILABLE = [70001]


@pytest.fixture
def app(page, dev_stack) -> AppPage:
    return AppPage(page, dev_stack)


def test_a_job_started_from_the_form_progresses_to_a_downloadable_zip(app, dev_stack, screenshots):
    app.open().start(", ".join(map(str, AVAILABLE + UNAVAILABLE)))

    job_id = app.job_id_in_url()
    app.wait(
        lambda d: app.status() == "processing" and 0 < app.progress() < 100 and app.file_counts()["pending"] > 0,
        timeout=30,
        what="the job mid-way, some files done and some pending",
    )
    app.driver.save_screenshot(str(screenshots / "app-mid-job.png"))
    app.wait_for_status("completed")
    app.driver.save_screenshot(str(screenshots / "app-done.png"))

    assert app.progress() == 100
    assert app.file_states() == {**dict.fromkeys(AVAILABLE, "available"), **dict.fromkeys(UNAVAILABLE, "unavailable")}
    kind, text = app.notice()
    assert kind == "ok" and "4 of 5 files" in text
    href = app.download_link().get_attribute("href")
    assert href == dev_stack.url(f"/v1/download/{job_id}")
    bundle = requests.get(href, timeout=30)
    assert bundle.status_code == 200
    assert len(zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()) == len(AVAILABLE)
    assert app.source() == "stream" and app.requests_to("/v1/download/status/") == []
    assert app.console_problems() == []


def test_a_job_split_into_volumes_lists_every_zip_with_its_digest(app, dev_stack):
    app.open().start("70056 70063 70070")
    job_id = app.job_id_in_url()
    app.wait_for_status("completed")

    items = app.wait(lambda d: app.volume_items() or None, timeout=10, what="the list of zips")
    kind, text = app.notice()
    assert kind == "ok" and "in 3 zips" in text
    assert app.download_link() is None
    assert len(items) == 3
    for number, (href, digest) in enumerate(items, start=1):
        assert href == dev_stack.url(f"/v1/download/{job_id}?volume={number}")
        zipped = requests.get(href, timeout=30)
        assert zipped.status_code == 200
        assert digest == f"sha256 {hashlib.sha256(zipped.content).hexdigest()}"
    assert app.console_problems() == []


def test_every_volume_is_verified_in_the_browser_and_a_tampered_one_does_not_match(app, dev_stack, screenshots):
    app.open().start("70056 70063 70070")
    job_id = app.job_id_in_url()
    app.wait_for_status("completed")
    app.wait(lambda d: len(app.volume_items()) == 3 or None, timeout=10, what="the list of zips")

    app.verify_all()
    assert app.wait_for_checks() == ["verified"] * 3
    app.driver.save_screenshot(str(screenshots / "app-verified.png"))

    # The second zip's object, rewritten in the emulated bucket behind the service's back.
    bundles = requests.get(dev_stack.url(f"/v1/download/status/{job_id}"), timeout=10).json()["bundles"]
    bucket, key = urlsplit(bundles[1]["downloadUrl"]).path.lstrip("/").split("/", 1)
    dev_stack.aws("s3").put_object(Bucket=bucket, Key=unquote(key), Body=b"not the zip the service wrote")

    app.verify_all()
    assert app.wait_for_checks() == ["verified", "mismatch", "verified"]
    assert "Does not match" in app.volume_check_texts()[1]
    assert app.console_problems() == []


def test_a_reload_or_a_shared_link_shows_the_same_job(app, dev_stack):
    app.open().start("70028 70035")
    job_id = app.job_id_in_url()
    app.wait_for_status("completed")

    app.driver.refresh()
    assert app.wait_for_status("completed") == "completed"
    assert app.file_states() == {70028: "available", 70035: "available"}
    app.open(f"?job={job_id}")
    assert app.wait_for_status("completed") == "completed"
    assert app.download_link().get_attribute("href").endswith(f"/v1/download/{job_id}")
    assert app.console_problems() == []


def test_the_cancel_button_cancels_a_running_job(app):
    app.open().start(" ".join(str(file_id) for file_id in range(70042, 70100, 7)))
    app.job_id_in_url()
    app.wait_for_status("queued", "processing")

    app.cancel()

    app.wait_for_status("cancelled", timeout=15)
    kind, text = app.wait_for_notice("cancelled")
    assert kind == "warn" and "This job was cancelled" in text
    assert app.download_link() is None
    assert app.console_problems() == []


def test_ids_that_are_not_file_ids_are_refused_before_anything_is_sent(app):
    app.open().start("70000, abc")

    kind, text = app.wait_for_notice("not a file id")
    assert kind == "error" and '"abc"' in text
    assert app.driver.current_url.endswith("/app")
    assert app.console_problems() == []
