"""Settings: one frozen object from the environment, working defaults, errors that name the variable."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from chalicelib import runtime
from chalicelib.config import ENV_NAMES, Settings, SettingsError, get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_empty_environment_gives_working_local_defaults():
    settings = Settings.from_env({})

    assert settings.jobs_table == "delineate-jobs"
    assert settings.bucket == "delineate-storage"
    assert settings.delay_enabled is True
    assert (settings.delay_min_ms, settings.delay_max_ms) == (10000, 200000)
    assert settings.presign_expiry_seconds == 900  # DESIGN: default 15 minutes
    assert settings.job_ttl_seconds == 86400  # DESIGN: default 24 hours
    assert settings.cors_origins == ("*",)


def test_original_service_names_are_read():
    for name in (
        "DOWNLOAD_DELAY_ENABLED",
        "DOWNLOAD_DELAY_MIN_MS",
        "DOWNLOAD_DELAY_MAX_MS",
        "S3_BUCKET_NAME",
        "REQUEST_TIMEOUT_MS",
        "RATE_LIMIT_WINDOW_MS",
        "RATE_LIMIT_MAX_REQUESTS",
        "CORS_ORIGINS",
    ):
        assert name in ENV_NAMES


@pytest.mark.parametrize("stage", ["prod", "localstack"])
def test_every_variable_a_stage_sets_is_one_the_service_reads(stage):
    """A setting nothing reads (PRESIGN_REFRESH_MARGIN_SECONDS was one) tells an operator a lever exists that does not."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    names = set(config["stages"][stage].get("environment_variables", {}))

    unread = {name for name in names if not name.startswith("AWS_")} - set(ENV_NAMES)  # AWS_*: boto3's, X-Ray's

    assert unread == set()


def test_values_come_from_the_environment():
    settings = Settings.from_env(
        {
            "S3_BUCKET_NAME": "my-bucket",
            "DOWNLOAD_DELAY_ENABLED": "off",
            "DOWNLOAD_DELAY_MIN_MS": "5",
            "DOWNLOAD_DELAY_MAX_MS": "7",
            "CORS_ORIGINS": " https://a.test , ,https://b.test ",
            "MAX_RECEIVE_COUNT": "3",
        }
    )

    assert settings.bucket == "my-bucket"
    assert settings.delay_enabled is False
    assert (settings.delay_min_ms, settings.delay_max_ms) == (5, 7)
    assert settings.cors_origins == ("https://a.test", "https://b.test")
    assert settings.max_receive_count == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_booleans_accept_the_usual_spellings(raw, expected):
    assert Settings.from_env({"DOWNLOAD_DELAY_ENABLED": raw}).delay_enabled is expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DOWNLOAD_DELAY_ENABLED": "maybe"}, "DOWNLOAD_DELAY_ENABLED: expected a boolean, got 'maybe'"),
        ({"START_WAIT_MS": "soon"}, "START_WAIT_MS: invalid literal for int() with base 10: 'soon'"),
        (
            {"DOWNLOAD_DELAY_MIN_MS": "10", "DOWNLOAD_DELAY_MAX_MS": "5"},
            "DOWNLOAD_DELAY_MIN_MS must be >= 0 and <= DOWNLOAD_DELAY_MAX_MS",
        ),
        ({"DOWNLOAD_DELAY_MIN_MS": "-1"}, "DOWNLOAD_DELAY_MIN_MS must be >= 0 and <= DOWNLOAD_DELAY_MAX_MS"),
        ({"MAX_RECEIVE_COUNT": "0"}, "MAX_RECEIVE_COUNT must be >= 1"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY must be >= 1"),
        ({"RATE_LIMIT_WINDOW_MS": "0"}, "RATE_LIMIT_WINDOW_MS must be >= 1000 (one second)"),
        ({"RATE_LIMIT_WINDOW_MS": "-60000"}, "RATE_LIMIT_WINDOW_MS must be >= 1000 (one second)"),
        ({"RATE_LIMIT_MAX_REQUESTS": "0"}, "RATE_LIMIT_MAX_REQUESTS must be >= 1 (0 would refuse every request)"),
        ({"RATE_LIMIT_MAX_REQUESTS": "-5"}, "RATE_LIMIT_MAX_REQUESTS must be >= 1 (0 would refuse every request)"),
        ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES must be between 1 and 10485760 (API Gateway's 10 MB payload quota)"),
        ({"PRESIGN_EXPIRY_SECONDS": "0"}, "PRESIGN_EXPIRY_SECONDS must be between 1 and 604800 (SigV4's 7 days)"),
        ({"PRESIGN_EXPIRY_SECONDS": "604801"}, "PRESIGN_EXPIRY_SECONDS must be between 1 and 604800 (SigV4's 7 days)"),
        ({"STATUS_RETRY_AFTER_SECONDS": "-1"}, "STATUS_RETRY_AFTER_SECONDS must be >= 0"),
        ({"REQUEST_TIMEOUT_MS": "0"}, "REQUEST_TIMEOUT_MS must be >= 1"),
        ({"JOB_TTL_SECONDS": "0"}, "JOB_TTL_SECONDS must be >= 1"),
        (
            {"LONG_POLL_MAX_SECONDS": "21"},
            "LONG_POLL_MAX_SECONDS must be between 0 and 20 (0: answer at once with Retry-After)",
        ),
        (
            {"LONG_POLL_MAX_SECONDS": "-1"},
            "LONG_POLL_MAX_SECONDS must be between 0 and 20 (0: answer at once with Retry-After)",
        ),
    ],
)
def test_unusable_values_fail_naming_the_variable(environ, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", "import app"],  # a Lambda cold start imports app.py, which reads the settings
        [sys.executable, "-m", "chalicelib.local.stack"],  # what `make dev` runs
    ],
    ids=["cold start", "make dev"],
)
def test_a_setting_that_would_fail_every_request_stops_the_start_naming_it(command, tmp_path):
    env = {**os.environ, "RATE_LIMIT_WINDOW_MS": "0", "DEV_STATE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}

    # A session of its own: were the stack to start after all, its children go with it.
    started = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=PIPE, stderr=PIPE, start_new_session=True)
    try:
        stdout, stderr = started.communicate(timeout=60)
    finally:
        if started.poll() is None:
            os.killpg(started.pid, signal.SIGKILL)

    assert started.returncode != 0
    assert "RATE_LIMIT_WINDOW_MS must be >= 1000" in stderr
    assert "Delineate is up" not in stdout


def test_max_delay_is_zero_when_delays_are_disabled():
    assert Settings.from_env({"DOWNLOAD_DELAY_ENABLED": "false"}).max_delay_seconds == 0.0
    assert Settings.from_env({"DOWNLOAD_DELAY_MAX_MS": "1500", "DOWNLOAD_DELAY_MIN_MS": "0"}).max_delay_seconds == 1.5


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings.from_env({}).bucket = "other"  # type: ignore[misc]


def test_process_settings_are_read_once_until_reset(monkeypatch):
    monkeypatch.setenv("S3_BUCKET_NAME", "first")
    runtime.reset()
    first = runtime.settings()

    monkeypatch.setenv("S3_BUCKET_NAME", "second")
    cached = runtime.settings()
    runtime.reset()
    reread = runtime.settings()

    assert (first.bucket, cached.bucket, reread.bucket) == ("first", "first", "second")
    assert get_settings() is reread


def test_authentication_is_off_unless_asked_for_so_make_dev_keeps_working():
    settings = Settings.from_env({})

    assert settings.auth_mode == "none"
    assert settings.auth_required is False
    assert settings.api_key_cache_seconds == 30


def test_auth_mode_api_key_requires_keys():
    settings = Settings.from_env({"AUTH_MODE": " API-Key ", "API_KEY_CACHE_SECONDS": "60"})

    assert (settings.auth_mode, settings.auth_required, settings.api_key_cache_seconds) == ("api-key", True, 60)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AUTH_MODE": "basic"}, "AUTH_MODE: expected one of none, api-key, got 'basic'"),
        ({"API_KEY_CACHE_SECONDS": "61"}, "API_KEY_CACHE_SECONDS must be between 0 and 60"),
        ({"API_KEY_CACHE_SECONDS": "-1"}, "API_KEY_CACHE_SECONDS must be between 0 and 60"),
    ],
)
def test_auth_settings_that_would_weaken_revocation_or_typo_the_mode_are_refused(environ, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    assert str(error.value) == message


@pytest.mark.parametrize("raw", ["0", "-1", "abc"])
def test_bundle_max_bytes_must_be_a_positive_integer(raw):
    with pytest.raises(SettingsError, match="BUNDLE_MAX_BYTES"):
        Settings.from_env({"BUNDLE_MAX_BYTES": raw})


def test_bundle_max_bytes_defaults_to_4_gib():
    assert Settings.from_env({}).bundle_max_bytes == 4 * 1024**3
