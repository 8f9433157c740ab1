"""Delivery of a signed webhook event to a real receiver on loopback: outcomes, addresses, TLS, errors."""

from __future__ import annotations

import time

import pytest

from chalicelib.config import Settings, SettingsError
from chalicelib.webhooks.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    RetrySchedule,
    verify_signature,
)
from chalicelib.webhooks.sender import DeliveryOutcome, WebhookSender
from tests.support.receiver import WebhookReceiver, closed_port
from tests.support.tls import make_tls
from tests.unit.webhooks.test_events import NOW, SECRET, event  # one event for both halves of the webhook tests


def to(address: str):
    """A resolver that answers `address` for any name, and remembers what it was asked."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [address]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


def sender(**overrides) -> WebhookSender:
    options = {
        "allow_private": True,
        "schedule": RetrySchedule(max_attempts=3, base_seconds=1),
        "attempt_seconds": 2.0,
        "clock": lambda: NOW,
        "rng": lambda: 0.0,
    }
    return WebhookSender(SECRET, **{**options, **overrides})


# --- delivery to a real receiver ----------------------------------------------------------------


def test_a_2xx_answer_is_a_delivery_of_the_signed_event(receiver):
    result = sender().deliver(receiver.url("/hooks?source=delineate"), event(), attempt=1)
    assert result.outcome is DeliveryOutcome.DELIVERED
    assert (result.status_code, result.last_error, result.retry_in_seconds) == (204, None, None)
    [delivery] = receiver.wait_for(1, timeout=5)
    assert (delivery.method, delivery.path, delivery.body) == ("POST", "/hooks?source=delineate", event().body)
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers[EVENT_ID_HEADER.lower()] == event().id
    verify_signature(SECRET, delivery.headers[SIGNATURE_HEADER.lower()], delivery.body, now=NOW)


def test_a_500_is_retried_with_the_scheduled_delay_and_the_retry_resends_the_same_event(receiver):
    receiver.fail_first(1)
    failed = sender().deliver(receiver.url(), event(), attempt=1)
    assert failed.outcome is DeliveryOutcome.RETRY
    assert (failed.status_code, failed.last_error, failed.retry_in_seconds) == (500, "HTTP 500", 1)
    retried = sender(clock=lambda: NOW + 1).deliver(receiver.url(), event(), attempt=2)
    assert retried.outcome is DeliveryOutcome.DELIVERED
    first, second = receiver.wait_for(2, timeout=5)
    assert first.body == second.body
    assert first.headers[EVENT_ID_HEADER.lower()] == second.headers[EVENT_ID_HEADER.lower()]
    assert first.headers[SIGNATURE_HEADER.lower()] != second.headers[SIGNATURE_HEADER.lower()]  # signed anew


def test_the_last_attempt_failing_gives_up(receiver):
    receiver.fail_always()
    result = sender().deliver(receiver.url(), event(), attempt=3)
    assert result.outcome is DeliveryOutcome.GAVE_UP
    assert (result.status_code, result.last_error, result.retry_in_seconds) == (500, "HTTP 500", None)


def test_no_answer_within_the_attempts_deadline_is_retried(receiver):
    receiver.hang(10)  # released when the receiver stops
    result = sender(attempt_seconds=0.3).deliver(receiver.url(), event(), attempt=1)
    assert result.outcome is DeliveryOutcome.RETRY
    assert result.last_error == "no complete answer within 0.3s"
    assert len(receiver.wait_for(1, timeout=5)) == 1


def test_a_receiver_dribbling_its_answer_is_given_up_at_the_attempts_deadline(receiver):
    receiver.dribble(0.05)  # a byte every 50 ms: every socket read returns well within any read timeout
    started = time.monotonic()

    result = sender(attempt_seconds=1.0).deliver(receiver.url(), event(), attempt=1)

    elapsed = time.monotonic() - started
    assert result.outcome is DeliveryOutcome.RETRY
    assert result.last_error == "no complete answer within 1s"
    assert 1.0 <= elapsed < 3.0, elapsed  # the dribble itself never ends


def test_an_answer_slower_than_a_read_timeout_but_within_the_deadline_is_delivered(receiver):
    receiver.dribble(0.01, count=0)
    receiver.hang(0.5)

    assert sender(attempt_seconds=2.0).deliver(receiver.url(), event(), attempt=1).outcome is DeliveryOutcome.DELIVERED


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 " + b"O" * 2000 + b"\r\n\r\n", "status line longer than 1024 bytes"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n", "answer head longer than 16 KiB"),
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "connection closed before a response"),
    ],
)
def test_an_oversized_malformed_or_unfinished_answer_head_is_a_failure_even_with_a_2xx(receiver, answer, error):
    receiver.answer_raw(answer)

    result = sender().deliver(receiver.url(), event(), attempt=1)

    assert (result.outcome, result.last_error) == (DeliveryOutcome.RETRY, error)


def test_an_interim_1xx_answer_is_skipped_for_the_final_status(receiver):
    receiver.answer_raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")

    result = sender().deliver(receiver.url(), event(), attempt=1)

    assert (result.outcome, result.status_code) == (DeliveryOutcome.DELIVERED, 204)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    receiver.redirect_to(receiver.url("/elsewhere"))
    result = sender().deliver(receiver.url("/hooks"), event(), attempt=1)
    assert result.outcome is DeliveryOutcome.RETRY
    assert (result.status_code, result.last_error) == (302, "HTTP 302 (redirects are not followed)")
    assert [delivery.path for delivery in receiver.deliveries] == ["/hooks"]


def test_a_refused_connection_is_retried():
    result = sender().deliver(f"http://127.0.0.1:{closed_port()}/hooks", event(), attempt=1)
    assert result.outcome is DeliveryOutcome.RETRY
    assert (result.status_code, result.last_error) == (None, "connection refused")


def test_an_unresolvable_host_at_delivery_is_retried():
    def nxdomain(host, port):
        raise OSError("Name or service not known")

    result = sender(resolve=nxdomain).deliver("https://gone.example.com/hooks", event(), attempt=1)
    assert result.outcome is DeliveryOutcome.RETRY
    assert result.last_error == "callbackUrl: host gone.example.com could not be resolved"


def test_a_url_refused_at_delivery_gives_up_without_connecting(receiver):
    result = sender(allow_private=False, resolve=to("127.0.0.1")).deliver(
        receiver.url(host="hooks.example.com"), event(), attempt=1
    )
    assert result.outcome is DeliveryOutcome.GAVE_UP
    assert result.last_error == "refused: callbackUrl: host resolves to a loopback address; use a public host"
    assert receiver.deliveries == []


def test_metadata_is_refused_at_delivery_even_when_private_is_allowed():
    result = sender(resolve=to("169.254.169.254")).deliver("http://hooks.example.com/", event(), attempt=1)
    assert result.outcome is DeliveryOutcome.GAVE_UP
    assert "link-local" in (result.last_error or "")


def test_delivery_connects_to_the_checked_address_and_names_the_host(receiver):
    # hooks.example.test resolves nowhere in the system's DNS: only the checked address can have been used.
    resolve = to("127.0.0.1")
    result = sender(resolve=resolve).deliver(receiver.url(host="hooks.example.test"), event(), attempt=1)
    assert result.outcome is DeliveryOutcome.DELIVERED
    [delivery] = receiver.wait_for(1, timeout=5)
    assert delivery.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert resolve.calls == ["hooks.example.test"]  # resolved once, by the check; never again by the connection


def test_a_resolver_that_changes_its_answer_after_the_check_does_not_redirect_the_delivery(receiver):
    answers = iter(["127.0.0.1", "169.254.169.254", "10.9.9.9"])  # a rebinding name: first benign, then not

    def rebinding(host, port):
        return [next(answers)]

    result = sender(resolve=rebinding).deliver(receiver.url(host="rebind.example.test"), event(), attempt=1)
    assert result.outcome is DeliveryOutcome.DELIVERED
    assert len(receiver.wait_for(1, timeout=5)) == 1
    assert next(answers) == "169.254.169.254"  # the later answers were never asked for


def test_a_second_address_is_tried_when_the_first_cannot_be_reached(receiver):
    def two_records(host, port):
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on 127.0.0.2 at the receiver's port

    result = sender(resolve=two_records).deliver(receiver.url(host="multi.example.test"), event(), attempt=1)
    assert result.outcome is DeliveryOutcome.DELIVERED


def test_https_delivery_sends_sni_and_verifies_the_certificate_for_the_name(tmp_path):
    context, ca_file = make_tls(tmp_path, "hooks.example.test")
    with WebhookReceiver(ssl_context=context) as tls_receiver:
        url = tls_receiver.url(host="hooks.example.test", scheme="https")
        result = sender(resolve=to("127.0.0.1"), ca_certs=str(ca_file)).deliver(url, event(), attempt=1)
        assert result.outcome is DeliveryOutcome.DELIVERED, result.last_error
        [delivery] = tls_receiver.wait_for(1, timeout=5)
        assert delivery.server_name == "hooks.example.test"
        assert delivery.headers["host"] == f"hooks.example.test:{tls_receiver.port}"


def test_https_delivery_to_a_certificate_for_another_name_is_retried_without_sending(tmp_path):
    context, ca_file = make_tls(tmp_path, "someone-else.example.test")
    with WebhookReceiver(ssl_context=context) as tls_receiver:
        url = tls_receiver.url(host="hooks.example.test", scheme="https")
        result = sender(resolve=to("127.0.0.1"), ca_certs=str(ca_file)).deliver(url, event(), attempt=1)
        assert result.outcome is DeliveryOutcome.RETRY
        assert (result.last_error or "").startswith("TLS failed")
        assert tls_receiver.deliveries == []


def test_last_error_is_short_and_never_holds_the_secret(receiver):
    receiver.fail_always(status=503)
    results = [
        sender().deliver(receiver.url(), event(), attempt=1),
        sender(attempt_seconds=0.2).deliver(f"http://127.0.0.1:{closed_port()}/", event(), attempt=1),
        sender().deliver("http://user:" + SECRET + "@example.com/", event(), attempt=1),
    ]
    for result in results:
        assert result.last_error and len(result.last_error) <= 200
        assert SECRET not in result.last_error


def test_the_receiver_says_how_many_deliveries_it_saw_when_waiting_times_out(receiver):
    with pytest.raises(AssertionError, match="expected 1 deliveries within 0.05s, got 0"):
        receiver.wait_for(1, timeout=0.05)


# --- settings -----------------------------------------------------------------------------------


def test_an_attempt_has_a_10s_deadline_by_default_and_a_public_base_url_is_optional():
    settings = Settings.from_env({"PUBLIC_BASE_URL": "https://api.example.com/"})
    assert settings.callback_attempt_seconds == 10.0
    assert settings.public_base_url == "https://api.example.com"
    assert Settings.from_env({}).public_base_url == ""


@pytest.mark.parametrize(
    "environ",
    [{"CALLBACK_ATTEMPT_SECONDS": "0"}, {"CALLBACK_ATTEMPT_SECONDS": "301"}, {"PUBLIC_BASE_URL": "api.example.com"}],
)
def test_an_unusable_attempt_deadline_or_base_url_is_refused(environ):
    with pytest.raises(SettingsError, match=next(iter(environ))):
        Settings.from_env(environ)
