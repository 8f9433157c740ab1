"""The deploy rehearsal: the user's own `scripts/deploy.sh deploy` and `destroy`, against LocalStack.

Run by `make test-deploy` (scripts/test-deploy.sh), which starts LocalStack in
host mode with the services the packaged stack uses and sets
DELINEATE_DEPLOY_ENDPOINT; skipped elsewhere. The stack is build/$STAGE (run
`make package` first), deployed through CloudFormation with the SAM
transform, exactly as in an account: only the endpoint differs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from tests.deploy.resources import PARTS, still_exists

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "scripts" / "deploy.sh"
ENDPOINT = os.environ.get("DELINEATE_DEPLOY_ENDPOINT", "")
STAGE = os.environ.get("STAGE", "prod")
STACK = "delineate-rehearsal"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

pytestmark = pytest.mark.skipif(not ENDPOINT, reason="needs LocalStack: make test-deploy")


def deploy_sh(command: str, stack: str = STACK, **env: str) -> subprocess.CompletedProcess:
    """scripts/deploy.sh as a user runs it, its AWS calls pointed at LocalStack by AWS_ENDPOINT_URL alone."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": ENDPOINT,
            "AWS_DEFAULT_REGION": REGION,
            "AWSCLI_PINNED": "1",
            "STAGE": STAGE,
            "STACK_NAME": stack,
            "DESTROY_CONFIRM": stack,
            **env,
        }
    )
    return subprocess.run(
        ["bash", str(DEPLOY), command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )


def aws(service: str):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def stack_status(name: str) -> str | None:
    try:
        return aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


@pytest.fixture(scope="module")
def deployed():
    """`deploy.sh deploy` once; yields its output, the stack's resources and its processed template."""
    result = deploy_sh("deploy")
    assert result.returncode == 0, f"deploy failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    cloudformation = aws("cloudformation")
    resources = cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    processed = cloudformation.get_template(StackName=STACK, TemplateStage="Processed")["TemplateBody"]
    yield result, resources, processed
    if stack_status(STACK) not in (None, "DELETE_COMPLETE"):
        deploy_sh("destroy")


def test_preflight_refuses_reservations_the_account_cannot_give_before_any_change():
    # LocalStack's account: quota 1,000, so 100 + 900 + 1 leaves fewer than 100 unreserved.
    result = deploy_sh("deploy", stack="delineate-refused", DEPLOY_PARAMETER_OVERRIDES="WorkerMaximumConcurrency=900")

    assert result.returncode != 0
    assert "would reserve 1001 concurrent executions" in result.stderr
    assert "DEPLOY_PARAMETER_OVERRIDES=" in result.stderr
    assert stack_status("delineate-refused") is None


def test_deploy_checks_the_quota_then_creates_every_resource_of_the_packaged_stack(deployed):
    result, resources, processed = deployed
    packaged = yaml.safe_load((ROOT / "build" / STAGE / "sam.yaml").read_text())

    assert "preflight ok" in result.stdout
    assert stack_status(STACK) == "CREATE_COMPLETE"
    # The SAM transform's expansion is what CloudFormation created, one stack resource per entry.
    assert sorted(r["LogicalResourceId"] for r in resources) == sorted(processed["Resources"])
    # Everything written in sam.yaml is among them (SAM keeps a function's logical id).
    assert set(packaged["Resources"]) <= set(processed["Resources"])
    incomplete = {
        r["LogicalResourceId"]: r["ResourceStatus"] for r in resources if r["ResourceStatus"] != "CREATE_COMPLETE"
    }
    assert incomplete == {}


def test_destroy_leaves_nothing_but_what_the_template_retains(deployed):
    _, resources, processed = deployed
    retained = {name for name, body in processed["Resources"].items() if body.get("DeletionPolicy") == "Retain"}
    types = {r["ResourceType"] for r in resources}

    result = deploy_sh("destroy")

    assert result.returncode == 0, result.stderr
    assert stack_status(STACK) in (None, "DELETE_COMPLETE")
    assert {PARTS[t] for t in types if t in PARTS} <= types  # every part's owner is checked below
    left = {
        r["LogicalResourceId"]
        for r in resources
        if r["ResourceType"] not in PARTS and still_exists(aws, r["ResourceType"], r["PhysicalResourceId"])
    }
    assert left == retained
    assert retained == {"ApiGatewayLoggingRole", "ApiGatewayAccount"}  # the account-wide API Gateway logging
