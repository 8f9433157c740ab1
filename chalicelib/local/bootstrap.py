"""Creates the resources of infra/template.yaml in an emulator, via CloudFormation.

The template is the only list of resources: this module never creates a table,
queue or bucket itself, it deploys the template and reads the stack outputs.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.local.processes import PROJECT_DIR
from chalicelib.polling import wait_until

TEMPLATE_PATH = PROJECT_DIR / "infra" / "template.yaml"
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE", "ROLLBACK_IN_PROGRESS"}

# stack output -> environment variable the service reads (chalicelib.config)
OUTPUT_ENV = {
    "JobsTableName": "JOBS_TABLE_NAME",
    "WorkQueueUrl": "WORK_QUEUE_URL",
    "DeadLetterQueueUrl": "DEAD_LETTER_QUEUE_URL",
    "BucketName": "S3_BUCKET_NAME",
    "WorkQueueName": "WORK_QUEUE_NAME",
}


def _describe(cloudformation: Any, stack_name: str) -> dict | None:
    try:
        return cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def deploy(stack_name: str, parameters: dict[str, str], timeout: float = 120.0) -> dict[str, str]:
    """Creates the stack unless it exists already (e.g. LocalStack's init hook made it)."""
    cloudformation = boto3.client("cloudformation")
    stack = _describe(cloudformation, stack_name)
    if stack is None:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=TEMPLATE_PATH.read_text(),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        )
    stack = wait_until(
        lambda: _settled(cloudformation, stack_name), timeout, interval=0.5, what=f"stack {stack_name} to deploy"
    )
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _settled(cloudformation: Any, stack_name: str) -> dict | None:
    """The stack once deployed, None while in progress; a failed or vanished stack raises."""
    stack = _describe(cloudformation, stack_name)
    if stack is None:
        raise RuntimeError(f"stack {stack_name} is MISSING")
    if stack["StackStatus"] in _FAILED:
        raise RuntimeError(f"stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    return stack if stack["StackStatus"] in _DONE else None


def service_env(outputs: dict[str, str]) -> dict[str, str]:
    return {env: outputs[output] for output, env in OUTPUT_ENV.items() if output in outputs}
