"""GET /app is documented, self-contained and locked down: only its own inline blocks may run, and it
may connect only to the API and to the bucket's endpoint (to verify a zip it fetches there)."""

from __future__ import annotations

import re

import pytest
from chalice.test import Client

from chalicelib.api import webapp
from tests.contract.conformance import assert_conforms


@pytest.fixture
def page_response(stack):
    import app

    with Client(app.app) as client:
        yield client.http.get("/app?job=3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d")


def test_the_page_conforms_to_the_document(page_response):
    assert page_response.status_code == 200
    page = assert_conforms("GET", "/app", page_response)
    assert page.startswith("<!doctype html>")


def test_the_policy_allows_exactly_the_inline_scripts_and_style_by_hash(page_response, stack):
    page = page_response.body.decode()
    policy = page_response.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    (style,) = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert len(scripts) == len(webapp.SCRIPTS)
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == " ".join(map(webapp.csp_hash, scripts))
    assert directives["style-src"] == webapp.csp_hash(style)
    # The bucket's presigned URLs, signed regionally on AWS (chalicelib/aws/clients.py), and nothing else.
    assert directives["connect-src"] == f"'self' https://{stack['BucketName']}.s3.us-east-1.amazonaws.com"
    assert directives["frame-ancestors"] == "'none'"


def test_the_vendored_hash_names_its_version_and_license():
    vendored = (webapp.STATIC_DIR / webapp.SCRIPTS["sha256"]).read_text()
    license_text = (webapp.STATIC_DIR / "vendor" / "noble-hashes.LICENSE").read_text()
    assert vendored.startswith("/*! @noble/hashes 2.4.0,") and "MIT License" in vendored.splitlines()[1]
    assert "Copyright (c) 2022 Paul Miller" in license_text


def test_the_page_loads_nothing_from_elsewhere(page_response):
    page = page_response.body.decode()
    assert "http://" not in page and "https://" not in page and "//" + "cdn" not in page
    assert not re.search(r"<(script|link|img|iframe)[^>]*\ssrc=", page)
    assert not re.search(r"\sstyle=|\son[a-z]+=", page), "inline attributes would need 'unsafe-inline'"
