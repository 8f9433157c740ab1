"""AWS clients: where presigned URLs point, and what a failing dependency tells the caller."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

import chalicelib.aws.clients
from chalicelib.aws.clients import API_CONFIG, dependency, make_clients
from chalicelib.aws.storage import Storage
from chalicelib.errors import DependencyUnavailable

BUCKET = "delineate-storage"
KEY = "results/job-1/bundle.zip"


def presigned_url(monkeypatch, region: str):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    monkeypatch.setattr(
        chalicelib.aws.clients, "boto3", SimpleNamespace(session=SimpleNamespace(Session=lambda: session))
    )
    return urlsplit(Storage(make_clients(API_CONFIG).s3, BUCKET).presign(KEY, 60))


# -- presigned URLs ---------------------------------------------------------------


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_presigned_urls_name_the_regional_virtual_hosted_endpoint_they_are_signed_for(monkeypatch, region):
    url = presigned_url(monkeypatch, region)

    assert (url.scheme, url.netloc, url.path) == ("https", f"{BUCKET}.s3.{region}.amazonaws.com", f"/{KEY}")
    assert f"/{region}/s3/aws4_request" in parse_qs(url.query)["X-Amz-Credential"][0]


def test_presigned_urls_stay_path_style_on_an_emulator_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

    url = presigned_url(monkeypatch, "eu-west-1")

    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:4566", f"/{BUCKET}/{KEY}")


# -- dependency failures ------------------------------------------------------------


def throttled() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "UpdateItem",
    )


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failing_dependency_is_named_to_the_caller_and_its_error_code_only_logged():
    logger, logged = logging.getLogger("delineate.aws"), Records()
    logger.addHandler(logged)
    try:
        with pytest.raises(DependencyUnavailable) as raised, dependency("database"):
            raise throttled()
    finally:
        logger.removeHandler(logged)

    assert str(raised.value) == "database is unavailable"
    assert [(record.dependency, record.error) for record in logged.records] == [("database", "ThrottlingException")]
