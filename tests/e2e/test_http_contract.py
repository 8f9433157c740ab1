"""What every client sees at the HTTP edge of the running stack: shapes and headers."""

from __future__ import annotations

import pytest
import requests

SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Strict-Transport-Security", "Referrer-Policy")


def assert_error_shape(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message", "requestId"}
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text
    for header in SECURITY_HEADERS:
        assert header in response.headers


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("GET", "/no/such/path", {}, 404),
        ("GET", "/v1/download/status/not-a-uuid", {}, 400),
        ("GET", "/v1/download/status/3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d", {}, 404),
        ("PUT", "/v1/download/initiate", {"json": {"file_ids": [70000]}}, 405),
        ("POST", "/v1/download/initiate", {"data": "file_ids=1", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", "/v1/download/initiate", {"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/v1/download/initiate", {"json": {"file_ids": [9999]}}, 400),
        ("POST", "/v1/download/initiate", {"json": {"file_ids": list(range(10000, 11001))}}, 400),
        (
            "POST",
            "/v1/download/initiate",
            {"data": "[" + "1" * 70000 + "]", "headers": {"Content-Type": "application/json"}},
            413,
        ),
    ],
)
def test_bad_requests_get_a_4xx_in_the_error_shape(dev_stack, method, path, kwargs, status):
    response = requests.request(method, dev_stack.url(path), timeout=10, **kwargs)
    assert_error_shape(response, status)


def test_client_request_id_is_echoed(dev_stack):
    response = requests.get(dev_stack.url("/"), headers={"X-Request-ID": "client-abc-123"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "client-abc-123"
    assert response.json()["service"] == "delineate"


def test_error_message_names_the_offending_index(dev_stack):
    response = requests.post(dev_stack.url("/v1/download/initiate"), json={"file_ids": [70000, 70007, 5]}, timeout=10)
    assert_error_shape(response, 400)
    assert response.json()["message"] == "file_ids[2]: must be >= 10000"


def test_cors_preflight_is_answered(dev_stack):
    response = requests.options(
        dev_stack.url("/v1/download/initiate"),
        timeout=10,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "idempotency-key" in response.headers["Access-Control-Allow-Headers"].lower()


def test_a_list_of_origins_answers_only_listed_origins_over_http(tmp_path):
    from tests.support.devstack import FAST_FILES, start_dev_stack

    allowed, evil = "https://b.example", "https://evil.example"
    stack = start_dev_stack(
        tmp_path, **{**FAST_FILES, "LOCAL_CONSUMERS": "1", "CORS_ORIGINS": f"https://a.example,{allowed}"}
    )
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    try:
        answers = {
            (method, origin): requests.request(
                method,
                stack.url("/v1/download/initiate" if method == "OPTIONS" else "/health"),
                headers={"Origin": origin, **(preflight if method == "OPTIONS" else {})},
                timeout=10,
            )
            for method in ("GET", "OPTIONS")
            for origin in (allowed, evil)
        }
    finally:
        stack.stop()
    for method in ("GET", "OPTIONS"):
        assert answers[(method, allowed)].status_code == 200
        assert answers[(method, allowed)].headers["Access-Control-Allow-Origin"] == allowed
        assert "Access-Control-Allow-Origin" not in answers[(method, evil)].headers
        assert all(answers[(method, origin)].headers["Vary"] == "Origin" for origin in (allowed, evil))
    assert "POST" in answers[("OPTIONS", allowed)].headers["Access-Control-Allow-Methods"]


def test_every_response_carries_rate_limit_headers_when_enabled(tmp_path):
    from tests.support.devstack import FAST_FILES, start_dev_stack

    stack = start_dev_stack(
        tmp_path,
        **{
            **FAST_FILES,
            "LOCAL_CONSUMERS": "1",
            "RATE_LIMIT_ENABLED": "true",
            "RATE_LIMIT_MAX_REQUESTS": "5",
            "RATE_LIMIT_WINDOW_MS": "3600000",
        },
    )  # no window boundary mid-test
    try:  # the harness's own /health polls share the window, so count down to the first 429
        answers = []
        while len(answers) < 10 and (not answers or answers[-1].status_code != 429):
            answers.append(requests.get(stack.url("/v1/download/status/not-a-uuid"), timeout=10))
    finally:
        stack.stop()
    codes = [a.status_code for a in answers]
    assert codes[-1] == 429 and set(codes[:-1]) == {400}
    remaining = [int(a.headers["RateLimit-Remaining"]) for a in answers]
    assert remaining[:-1] == list(range(remaining[0], -1, -1)) and remaining[-1] == 0
    assert all(a.headers["RateLimit-Limit"] == "5" for a in answers)
    assert int(answers[-1].headers["Retry-After"]) >= 1
