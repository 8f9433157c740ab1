"""CORS: `*` answers `*`; a list of origins answers only a listed Origin, with Vary: Origin, on preflights too."""

from __future__ import annotations

import importlib

import pytest
from chalice.test import Client

import app
from chalicelib import runtime

ALLOWED, OTHER_ALLOWED, EVIL = "https://a.example", "https://b.example", "https://evil.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,idempotency-key"}


def app_with_origins(monkeypatch, origins: str):
    """The app as a process started with CORS_ORIGINS=origins builds it (CORS is wired at import)."""
    monkeypatch.setenv("CORS_ORIGINS", origins)
    runtime.reset()
    return importlib.reload(app).app


@pytest.fixture
def listed(deployed, monkeypatch):
    with Client(app_with_origins(monkeypatch, f"{ALLOWED},{OTHER_ALLOWED}")) as client:
        yield client
    monkeypatch.delenv("CORS_ORIGINS")
    runtime.reset()
    importlib.reload(app)  # later tests get the app of the default settings back


@pytest.fixture
def anyone(deployed, monkeypatch):
    with Client(app_with_origins(monkeypatch, "*")) as client:
        yield client


@pytest.mark.parametrize("origin", [ALLOWED, OTHER_ALLOWED])
def test_a_listed_origin_is_echoed_with_vary_origin(listed, origin):
    response = listed.http.get("/health", headers={"Origin": origin})

    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Vary"] == "Origin"


def test_a_listed_origins_preflight_is_answered_with_that_origin(listed):
    response = listed.http.options("/v1/download/initiate", headers={"Origin": OTHER_ALLOWED, **PREFLIGHT})

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == OTHER_ALLOWED
    assert response.headers["Vary"] == "Origin"
    assert "POST" in response.headers["Access-Control-Allow-Methods"].split(",")
    assert "idempotency-key" in response.headers["Access-Control-Allow-Headers"].lower()


def test_a_path_with_a_parameter_has_its_preflight_too(listed):
    response = listed.http.options(
        "/v1/download/3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d", headers={"Origin": ALLOWED, **PREFLIGHT}
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert set(response.headers["Access-Control-Allow-Methods"].split(",")) >= {"GET", "DELETE", "OPTIONS"}


def test_an_origin_not_listed_gets_no_allow_origin_on_a_request_or_a_preflight(listed):
    request = listed.http.get("/health", headers={"Origin": EVIL})
    preflight = listed.http.options("/v1/download/initiate", headers={"Origin": EVIL, **PREFLIGHT})

    for response in (request, preflight):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert response.headers["Vary"] == "Origin"


def test_an_error_answers_a_listed_origin_too(listed):
    response = listed.http.get("/v1/download/status/not-a-uuid", headers={"Origin": ALLOWED})

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_a_star_configuration_still_answers_star(anyone):
    # (Its preflight is Chalice's own, answered before the app: tests/e2e/test_http_contract.py
    # checks it over HTTP; chalice.test cannot read that body-less answer.)
    response = anyone.http.get("/health", headers={"Origin": EVIL})

    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in response.headers
