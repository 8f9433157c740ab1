"""verify_webhook against signatures computed here, independently of the library."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from delineate_client import WebhookVerificationError, verify_webhook

SECRET = "whsec_test"
BODY = json.dumps({"type": "job.completed", "id": "evt-1", "jobId": "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"}).encode()
NOW = 1_800_000_000


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def headers(signature_header: str) -> dict[str, str]:
    return {
        "Delineate-Signature": signature_header,
        "Delineate-Event-Id": "evt-unsigned",
        "Content-Type": "application/json",
    }


def test_a_good_signature_returns_the_event():
    event = verify_webhook(SECRET, headers(f"t={NOW},v1={sign(SECRET, NOW, BODY)}"), BODY, now=NOW + 10)
    assert event["type"] == "job.completed" and event["_eventId"] == "evt-1"  # the body's, not the header's


def test_any_of_several_v1_signatures_may_match_during_secret_rotation():
    header = f"t={NOW},v1={sign('old-secret', NOW, BODY)},v1={sign(SECRET, NOW, BODY)}"
    assert verify_webhook(SECRET, {"delineate-signature": header}, BODY, now=NOW)["type"] == "job.completed"


@pytest.mark.parametrize(
    "header, body",
    [
        (f"t={NOW},v1={sign('wrong', NOW, BODY)}", BODY),  # another secret
        (f"t={NOW},v1={sign(SECRET, NOW, BODY)}", BODY + b" "),  # body changed after signing
        (f"t={NOW + 1},v1={sign(SECRET, NOW, BODY)}", BODY),  # timestamp changed after signing
        (f"t={NOW}", BODY),  # no signature
        (f"v1={sign(SECRET, NOW, BODY)}", BODY),  # no timestamp
        ("garbage", BODY),
    ],
)
def test_wrong_or_malformed_signatures_are_refused(header, body):
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers(header), body, now=NOW)


def test_a_missing_header_is_refused():
    with pytest.raises(WebhookVerificationError, match="no Delineate-Signature"):
        verify_webhook(SECRET, {}, BODY, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_the_tolerance_are_refused(skew):
    header = f"t={NOW},v1={sign(SECRET, NOW, BODY)}"
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(SECRET, headers(header), BODY, now=NOW + skew)
    assert verify_webhook(SECRET, headers(header), BODY, tolerance=400, now=NOW + skew)


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    verify_webhook(SECRET, headers(f"t={NOW},v1={sign(SECRET, NOW, BODY)}"), BODY.decode(), now=NOW)
    assert calls == [(sign(SECRET, NOW, BODY), sign(SECRET, NOW, BODY))]
