"""boto3 clients and the translation of AWS failures into DependencyUnavailable.

Clients are built lazily and once per process (a Lambda container, a local
consumer), never at import time, so tests can hand the domain moto-backed ones.
The endpoint is not configured here: boto3 honours AWS_ENDPOINT_URL itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import DependencyUnavailable

# The API answers within a proxy's patience, so it fails fast: a dead
# dependency becomes a 503 in a few seconds, not a 29 s gateway timeout.
API_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
# The rate limiter fails open, so it gives up at once rather than delay every request.
LIMITER_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 1})
# Workers can wait longer; SQS redelivers whatever still fails.
WORKER_CONFIG = Config(connect_timeout=3, read_timeout=30, retries={"mode": "standard", "max_attempts": 5})

_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "ResourceNotFoundException",  # table missing: misdeployment, not the client's fault
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


@dataclass(frozen=True)
class AwsClients:
    dynamodb: Any  # boto3 DynamoDB service resource
    sqs: Any
    s3: Any


def make_clients(config: Config = API_CONFIG) -> AwsClients:
    session = boto3.session.Session()
    return AwsClients(
        dynamodb=session.resource("dynamodb", config=config),
        sqs=session.client("sqs", config=config),
        # SigV4 presigning: SigV2 URLs are deprecated and refused in newer regions.
        s3=session.client("s3", config=config.merge(Config(signature_version="s3v4"))),
    )


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def is_dependency_failure(exc: Exception) -> bool:
    if isinstance(exc, BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error_code(exc) in _RETRYABLE_CODES
    return False


@contextmanager
def dependency(name: str) -> Iterator[None]:
    """Turns an unreachable or failing AWS dependency into a 503 naming it."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        if is_dependency_failure(exc):
            detail = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise DependencyUnavailable(name, detail) from exc
        raise
