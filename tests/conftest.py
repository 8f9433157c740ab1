"""Shared fixtures: an offline AWS (moto) holding the resources of infra/template.yaml, and one dev stack."""

from __future__ import annotations

import os

import pytest

from tests.support.aws import deploy_template_in_moto


@pytest.fixture(autouse=True)
def _offline_aws_env(monkeypatch):
    """No test may reach a real account or a developer's emulator by accident."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in ("AWS_XRAY_SDK_ENABLED",):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")


@pytest.fixture
def stack(monkeypatch):
    """moto, with the template deployed and the service's env pointing at its outputs."""
    from moto import mock_aws

    from chalicelib import runtime

    with mock_aws():
        outputs = deploy_template_in_moto()
        monkeypatch.setenv("JOBS_TABLE_NAME", outputs["JobsTableName"])
        monkeypatch.setenv("WORK_QUEUE_URL", outputs["WorkQueueUrl"])
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", outputs["DeadLetterQueueUrl"])
        monkeypatch.setenv("S3_BUCKET_NAME", outputs["BucketName"])
        monkeypatch.setenv("DOWNLOAD_DELAY_ENABLED", "false")
        monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
        runtime.reset()
        yield outputs
        runtime.reset()


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory):
    """The real processes of `make dev` with FAST_FILES, started once for the e2e and client tiers.

    Tiers that need other settings start their own (tests/browser overrides this fixture).
    """
    from tests.support.devstack import FAST_FILES, start_dev_stack

    stack = start_dev_stack(tmp_path_factory.mktemp("devstack"), **FAST_FILES)
    yield stack
    stack.stop()
