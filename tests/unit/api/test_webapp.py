"""/app's policy lets the page connect to the API and to exactly the origin its zips' presigned URLs point at."""

from __future__ import annotations

import pytest
from botocore.exceptions import NoCredentialsError
from chalice.test import Client

import app
from chalicelib import runtime
from chalicelib.api import webapp
from chalicelib.aws.clients import make_clients
from chalicelib.aws.storage import Storage


def connect_src(policy: str) -> list[str]:
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    return directives["connect-src"].split()


def served_connect_src() -> list[str]:
    with Client(app.app) as client:
        return connect_src(client.http.get("/app").headers["Content-Security-Policy"])


def test_on_aws_the_page_may_connect_to_the_buckets_regional_endpoint(monkeypatch):
    monkeypatch.setenv("S3_BUCKET_NAME", "delineate-results-1a2b")
    runtime.reset()

    # The tier's boto3 Session is in us-east-1 (tests/unit/conftest.py), signed regionally like any other.
    assert served_connect_src() == ["'self'", "https://delineate-results-1a2b.s3.us-east-1.amazonaws.com"]


def test_against_an_emulator_the_page_may_connect_to_the_emulators_address(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    runtime.reset()

    assert served_connect_src() == ["'self'", "http://127.0.0.1:4566"]


def test_the_origin_is_the_one_a_presigned_url_points_at(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://localhost:9000")
    storage = Storage(make_clients().s3, "delineate-storage")

    signed = webapp.csp_origin(storage.presign("results/some-job/bundle.zip", 60))

    assert storage.presign_origin() == signed == "http://localhost:9000"


def test_without_credentials_to_sign_with_the_page_connects_only_to_itself():
    class Unsigned:
        def generate_presigned_url(self, *args, **kwargs):
            raise NoCredentialsError()

    origin = Storage(Unsigned(), "delineate-storage").presign_origin()
    policy = webapp.content_security_policy("'sha256-a'", ("'sha256-b'",), origin)

    assert origin is None and connect_src(policy) == ["'self'"]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://b.s3.us-east-1.amazonaws.com/key?X-Amz-Signature=1", "https://b.s3.us-east-1.amazonaws.com"),
        ("http://127.0.0.1:5000/bucket/key", "http://127.0.0.1:5000"),
        ("https://*.amazonaws.com/", None),
        ("https://a.example; script-src 'unsafe-inline'", None),
        ("https://user@a.example/", None),
        ("ftp://a.example/", None),
        ("", None),
    ],
)
def test_only_a_plain_http_origin_becomes_a_source(url, origin):
    assert webapp.csp_origin(url) == origin


def test_the_policy_never_allows_every_origin():
    policy = webapp.content_security_policy("'sha256-a'", ("'sha256-b'",), "https://*.example")

    assert "*" not in policy and connect_src(policy) == ["'self'"]
