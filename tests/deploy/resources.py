"""Does a stack's resource still exist? One question per resource type, asked of the service that owns it.

The deploy rehearsal (test_rehearsal.py) asks it of every resource after `deploy.sh destroy`.
A type without an answer here fails the rehearsal, so a new kind of resource cannot slip by unchecked.
"""

from __future__ import annotations

from typing import Any, Callable

from botocore.exceptions import ClientError

# Removed with the resource they belong to; that one is checked (a stack holding
# one of these always holds its parent too, the rehearsal asserts).
PARTS = {
    "AWS::Lambda::Permission": "AWS::Lambda::Function",
    "AWS::S3::BucketPolicy": "AWS::S3::Bucket",
    "AWS::ApiGateway::Deployment": "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Stage": "AWS::ApiGateway::RestApi",
}


def _absent_on(codes: tuple[str, ...], call: Callable[[], Any]) -> bool:
    """True when `call` succeeds (the resource exists), False when it fails with one of `codes`."""
    try:
        call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in codes:
            return False
        raise
    return True


def _secret_exists(aws: Callable[[str], Any], arn: str) -> bool:
    try:
        secret = aws("secretsmanager").describe_secret(SecretId=arn)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return "DeletedDate" not in secret  # scheduled for deletion counts as gone


def _log_group_exists(aws: Callable[[str], Any], name: str) -> bool:
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return any(group["logGroupName"] == name for group in groups)


def _alarm_exists(aws: Callable[[str], Any], name: str) -> bool:
    return bool(aws("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"])


def _dashboard_exists(aws: Callable[[str], Any], name: str) -> bool:
    """Listed rather than fetched: LocalStack records the dashboard's physical id as "unknown" and
    answers a missing one with InvalidParameterValue, so any dashboard left named like ours counts."""
    names = [entry["DashboardName"] for entry in aws("cloudwatch").list_dashboards().get("DashboardEntries", [])]
    return any(found == name or found.endswith("-operations") for found in names)


def _api_gateway_account_exists(aws: Callable[[str], Any], _physical_id: str) -> bool:
    return bool(aws("apigateway").get_account().get("cloudwatchRoleArn"))


CHECKS: dict[str, Callable[[Callable[[str], Any], str], bool]] = {
    "AWS::Lambda::Function": lambda aws, name: _absent_on(
        ("ResourceNotFoundException",), lambda: aws("lambda").get_function(FunctionName=name)
    ),
    "AWS::Lambda::EventSourceMapping": lambda aws, uuid: _absent_on(
        ("ResourceNotFoundException",), lambda: aws("lambda").get_event_source_mapping(UUID=uuid)
    ),
    "AWS::IAM::Role": lambda aws, name: _absent_on(("NoSuchEntity",), lambda: aws("iam").get_role(RoleName=name)),
    "AWS::SQS::Queue": lambda aws, url: _absent_on(
        ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"),
        lambda: aws("sqs").get_queue_attributes(QueueUrl=url),
    ),
    "AWS::DynamoDB::Table": lambda aws, name: _absent_on(
        ("ResourceNotFoundException",), lambda: aws("dynamodb").describe_table(TableName=name)
    ),
    "AWS::S3::Bucket": lambda aws, name: _absent_on(
        ("404", "NoSuchBucket"), lambda: aws("s3").head_bucket(Bucket=name)
    ),
    "AWS::ApiGateway::RestApi": lambda aws, api_id: _absent_on(
        ("NotFoundException",), lambda: aws("apigateway").get_rest_api(restApiId=api_id)
    ),
    "AWS::Events::Rule": lambda aws, name: _absent_on(
        ("ResourceNotFoundException",), lambda: aws("events").describe_rule(Name=name)
    ),
    "AWS::SecretsManager::Secret": _secret_exists,
    "AWS::Logs::LogGroup": _log_group_exists,
    "AWS::CloudWatch::Alarm": _alarm_exists,
    "AWS::CloudWatch::Dashboard": _dashboard_exists,
    "AWS::ApiGateway::Account": _api_gateway_account_exists,
}


def still_exists(aws: Callable[[str], Any], resource_type: str, physical_id: str) -> bool:
    """`aws(service)` hands a client; raises KeyError for a type nobody taught this module."""
    return CHECKS[resource_type](aws, physical_id)
