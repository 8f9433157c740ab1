"""Settings: one frozen object from the environment, working defaults, errors that name the variable."""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib import runtime
from chalicelib.config import ENV_NAMES, Settings, SettingsError, get_settings


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
    ],
)
def test_unusable_values_fail_naming_the_variable(environ, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(environ)
    assert str(error.value) == message


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
