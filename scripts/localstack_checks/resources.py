"""LocalStack is up, infra/template.yaml deploys through CloudFormation with every output, and goes again."""

from __future__ import annotations

from pathlib import Path

import requests
from botocore.exceptions import ClientError

from chalicelib.polling import wait_until
from scripts.localstack_checks.harness import REGION, Smoke, expect

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
NEEDED_SERVICES = ("s3", "sqs", "dynamodb", "cloudformation")
OUTPUTS = {
    "JobsTableName",
    "JobsTableArn",
    "WorkQueueUrl",
    "WorkQueueArn",
    "WorkQueueName",
    "DeadLetterQueueUrl",
    "DeadLetterQueueArn",
    "BucketName",
}


def health(smoke: Smoke) -> str:
    try:
        body = requests.get(f"{smoke.endpoint}/_localstack/health", timeout=5).json()
    except requests.ConnectionError:
        raise AssertionError(f"nothing answers on {smoke.endpoint}: run scripts/localstack.sh start") from None
    services = body.get("services", {})
    down = {s: services.get(s) for s in NEEDED_SERVICES if services.get(s) not in ("available", "running")}
    expect(not down, f"services not up: {down}")
    return f"LocalStack {body.get('version')}"


def deploy(smoke: Smoke) -> str:
    cfn = smoke.client("cloudformation")
    if _stack_exists(cfn, smoke.stack_name):
        delete_stack(smoke)
    cfn.create_stack(StackName=smoke.stack_name, TemplateBody=TEMPLATE.read_text())

    def finished():
        stack = cfn.describe_stacks(StackName=smoke.stack_name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    stack = wait_until(finished, timeout=120, interval=0.5, what="stack creation")
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=smoke.stack_name)["StackEvents"]
        reasons = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events
            if "FAILED" in e["ResourceStatus"]
        ]
        raise AssertionError(f"{stack['StackStatus']}: {reasons}")
    smoke.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    expect(OUTPUTS <= smoke.outputs.keys(), f"missing outputs: {OUTPUTS - smoke.outputs.keys()}")
    return f"stack {smoke.stack_name} CREATE_COMPLETE"


def _stack_exists(cfn, name: str) -> bool:
    try:
        cfn.describe_stacks(StackName=name)
    except ClientError:
        return False
    return True


def delete_stack(smoke: Smoke) -> str:
    cfn = smoke.client("cloudformation")
    bucket = smoke.outputs.get("BucketName") or _stack_bucket(cfn, smoke.stack_name)
    if bucket:
        empty_bucket(smoke, bucket)  # CloudFormation refuses to delete a non-empty bucket
    cfn.delete_stack(StackName=smoke.stack_name)

    def gone():
        try:
            stacks = cfn.describe_stacks(StackName=smoke.stack_name)["Stacks"]
        except ClientError:
            return True
        return not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE"

    wait_until(gone, timeout=60, interval=0.5, what="stack deletion")
    return f"stack {smoke.stack_name} deleted"


def _stack_bucket(cfn, stack_name: str) -> str | None:
    for resource in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]:
        if resource["ResourceType"] == "AWS::S3::Bucket":
            return resource.get("PhysicalResourceId")
    return None


def empty_bucket(smoke: Smoke, bucket: str) -> None:
    s3 = smoke.client("s3")
    try:
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise


def clear_data(smoke: Smoke) -> str:
    """Leave a kept stack empty: the smoke jobs would look stalled to the app's sweeper."""
    ddb, sqs = smoke.client("dynamodb"), smoke.client("sqs")
    table = smoke.outputs["JobsTableName"]
    deleted = 0
    for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
        for key in page["Items"]:
            ddb.delete_item(TableName=table, Key=key)
            deleted += 1
    empty_bucket(smoke, smoke.outputs["BucketName"])
    for url in (smoke.outputs["WorkQueueUrl"], smoke.outputs["DeadLetterQueueUrl"]):
        sqs.purge_queue(QueueUrl=url)
    return f"removed {deleted} items, the bucket's objects and queued messages"


def app_env(smoke: Smoke) -> str:
    o = smoke.outputs
    return "\n".join(
        [
            f"export AWS_ENDPOINT_URL={smoke.endpoint}",
            f"export AWS_DEFAULT_REGION={REGION}",
            "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
            f"export JOBS_TABLE_NAME={o['JobsTableName']}",
            f"export WORK_QUEUE_URL={o['WorkQueueUrl']}",
            f"export DEAD_LETTER_QUEUE_URL={o['DeadLetterQueueUrl']}",
            f"export S3_BUCKET_NAME={o['BucketName']}",
        ]
    )
