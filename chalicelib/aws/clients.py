"""boto3 clients and the translation of AWS failures into DependencyUnavailable.

One boto3 Session per process (a Lambda container, a local consumer), and each
client built from it on first use, never at import time, so tests can hand the
domain moto-backed ones. Cold starts are why: a Session loads its own copy of
the endpoint and service data (~0.1 s), and each client ~20-60 ms more, so a
request that needs no AWS call (GET /) should build neither.
The endpoint is not configured here: boto3 honours AWS_ENDPOINT_URL itself.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import DependencyUnavailable

log = logging.getLogger("delineate.aws")

# An API request makes at most this many AWS calls one after another before it
# can answer: the rate limiter's, then initiate's job write and message send.
# (/health pings its three dependencies at once, so it counts as one.)
_SEQUENTIAL_API_CALLS = 3
_FIRST_RETRY_BACKOFF_SECONDS = 1.0  # botocore standard mode: random() * 2**0 before the first retry


def _call_budget_seconds(request_timeout_ms: int) -> float:
    return request_timeout_ms / 1000 / (_SEQUENTIAL_API_CALLS + 1)  # one share left to answer


def api_config(request_timeout_ms: int) -> Config:
    """The API fails fast: a dead dependency is a 503 within REQUEST_TIMEOUT_MS, not a gateway timeout.

    botocore's timeouts are per attempt, not per call, and an emulator or
    endpoint that hangs (a stopped process still accepts TCP connections) is
    only noticed by the read timeout. So each call gets a share of the request
    budget that covers all its attempts and the backoff between them, and a
    retry is made only when the share leaves room for one. (botocore's
    `max_attempts` counts retries, not attempts: `total_max_attempts` is the
    number of tries, the initial one included.)
    """
    budget = _call_budget_seconds(request_timeout_ms)
    # Two attempts only when each can still wait as long as one would at the default budget.
    attempts = 2 if budget >= 8 * _FIRST_RETRY_BACKOFF_SECONDS else 1
    per_attempt = (budget - (attempts - 1) * _FIRST_RETRY_BACKOFF_SECONDS) / attempts
    connect = min(2.0, per_attempt * 0.3)
    read = min(5.0, per_attempt - connect)
    return Config(
        connect_timeout=connect, read_timeout=read, retries={"mode": "standard", "total_max_attempts": attempts}
    )


def limiter_config(request_timeout_ms: int) -> Config:
    """The rate limiter fails open, so it gives up after one attempt rather than delay every request."""
    budget = _call_budget_seconds(request_timeout_ms)
    connect = min(1.0, budget * 0.3)
    return Config(
        connect_timeout=connect,
        read_timeout=min(2.0, budget - connect),
        retries={"mode": "standard", "total_max_attempts": 1},
    )


API_CONFIG = api_config(30000)
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


# boto3: a Session is not thread-safe while it builds clients (the clients it
# returns are), and the API and the consumers build them from request threads.
_session_lock = threading.Lock()
_session: list[boto3.session.Session] = []


def session() -> boto3.session.Session:
    """The process's one boto3 Session, made on first use."""
    with _session_lock:
        if not _session:
            _session.append(boto3.session.Session())
        return _session[0]


def reset_session() -> None:
    """Tests: the next client comes from a new Session (one that reads the environment again)."""
    with _session_lock:
        _session.clear()


def _build(service: str, config: Config, resource: bool = False) -> Any:
    current = session()
    with _session_lock:
        if resource:
            return current.resource(service, config=config)
        return current.client(service, config=config)


class AwsClients:
    """DynamoDB (a boto3 service resource), SQS and S3, each built the first time it is used."""

    def __init__(self, config: Config) -> None:
        self._config = config

    @cached_property
    def dynamodb(self) -> Any:
        return _build("dynamodb", self._config, resource=True)

    @cached_property
    def sqs(self) -> Any:
        return _build("sqs", self._config)

    @cached_property
    def s3(self) -> Any:
        return _build("s3", s3_config(self._config))


def _endpoint_configured() -> bool:
    """An emulator's endpoint (LocalStack, moto server): boto3 sends every S3 call there."""
    return bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def s3_config(config: Config) -> Config:
    """SigV4, and on AWS the regional virtual-hosted endpoint: https://<bucket>.s3.<region>.amazonaws.com.

    botocore otherwise signs presigned URLs for the global host
    (<bucket>.s3.amazonaws.com) with a regional scope. Outside us-east-1, S3
    answers a young bucket's global host with a 307 to the regional one for up
    to a day (DNS propagation), and the redirected URL no longer matches its
    signature. us-east-1 is made regional too, so every region signs the same
    way. Against an emulator's endpoint boto3 keeps path style
    (http://host:port/<bucket>/key), which needs no per-bucket DNS name.
    SigV2 URLs are deprecated and refused in newer regions, hence s3v4.
    """
    sigv4 = config.merge(Config(signature_version="s3v4"))
    if _endpoint_configured():
        return sigv4
    return sigv4.merge(Config(s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}))


def make_clients(config: Config = API_CONFIG) -> AwsClients:
    return AwsClients(config)


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
    """Turns an unreachable or failing AWS dependency into a 503 naming it.

    The caller learns which dependency failed, not how: the AWS error code
    (ThrottlingException, NoSuchBucket, ...) says what the service runs on and
    how it is provisioned, so it goes to the log only.
    """
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        if is_dependency_failure(exc):
            detail = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            log.warning("dependency unavailable", extra={"dependency": name, "error": detail})
            raise DependencyUnavailable(name) from exc
        raise


def secret_string(arn: str, config: Config = WORKER_CONFIG) -> str:
    """A Secrets Manager secret's value: the webhook signing secret, read once per worker container."""
    client = _build("secretsmanager", config)
    return str(client.get_secret_value(SecretId=arn)["SecretString"])


def query_items(table: Any, query: dict[str, Any]) -> Iterator[dict]:
    """Every item a DynamoDB Query matches, one page (at most 1 MB, or query's Limit) at a time, as the caller reads."""
    query = dict(query)
    while True:
        page = table.query(**query)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
