"""`make dev`'s environment: the emulator never sees, and the state file never holds, real credentials."""

from __future__ import annotations

import stat

from chalicelib.local import stack

REAL_LOOKING = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
    "AWS_PROFILE": "production-admin",
}


def test_exported_credentials_are_replaced_by_dummy_ones(monkeypatch):
    for name, value in REAL_LOOKING.items():
        monkeypatch.setenv(name, value)

    env = stack._base_env()

    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert "AWS_SESSION_TOKEN" not in env
    assert "AWS_PROFILE" not in env


def test_state_file_holds_no_real_credentials_and_is_owner_only(monkeypatch, tmp_path):
    for name, value in REAL_LOOKING.items():
        monkeypatch.setenv(name, value)
    env = {**stack._base_env(), "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    previous = tmp_path / "stack.env"
    previous.write_text("stale\n")
    previous.chmod(0o644)  # a file left by an older stack keeps no wider mode

    stack._write_env_file(env, tmp_path)

    text = previous.read_text()
    assert all(value not in text for value in REAL_LOOKING.values())
    assert "AWS_ACCESS_KEY_ID=testing" in text
    assert stat.S_IMODE(previous.stat().st_mode) == 0o600


def test_dev_stack_generates_a_signing_secret_and_writes_it_to_the_state_file(monkeypatch, tmp_path):
    monkeypatch.delenv("CALLBACK_SIGNING_SECRET", raising=False)
    env = stack._base_env()
    again = stack._base_env()

    stack._write_env_file(env, tmp_path)

    assert env["CALLBACK_SIGNING_SECRET"].startswith("whsec_") and len(env["CALLBACK_SIGNING_SECRET"]) >= 64
    assert again["CALLBACK_SIGNING_SECRET"] != env["CALLBACK_SIGNING_SECRET"]  # generated, never a fixed value
    assert f"CALLBACK_SIGNING_SECRET={env['CALLBACK_SIGNING_SECRET']}\n" in (tmp_path / "stack.env").read_text()


def test_dev_stack_keeps_a_given_secret_and_lets_callbacks_reach_loopback_quickly(monkeypatch):
    monkeypatch.setenv("CALLBACK_SIGNING_SECRET", "whsec_mine")

    env = stack._base_env()

    assert env["CALLBACK_SIGNING_SECRET"] == "whsec_mine"
    assert env["CALLBACK_ALLOW_PRIVATE"] == "true"
    assert env["CALLBACK_RETRY_BASE_SECONDS"] == "1"


def test_tracing_is_on_only_when_a_daemon_receives_it(monkeypatch):
    monkeypatch.delenv("AWS_XRAY_SDK_ENABLED", raising=False)
    monkeypatch.delenv("AWS_XRAY_DAEMON_ADDRESS", raising=False)
    assert stack._base_env()["AWS_XRAY_SDK_ENABLED"] == "false"

    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")
    assert stack._base_env()["AWS_XRAY_SDK_ENABLED"] == "true"

    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")
    assert stack._base_env()["AWS_XRAY_SDK_ENABLED"] == "false"
