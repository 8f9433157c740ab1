"""The work queue: its output URL works as-is, messages round-trip, and a poison message reaches the DLQ."""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import urlparse

import boto3

from chalicelib.polling import wait_until
from scripts.localstack_checks.harness import CREDENTIALS, REGION, Smoke, expect


def queue_url_format(smoke: Smoke) -> str:
    url = smoke.outputs["WorkQueueUrl"]
    parsed = urlparse(url)
    # The stack output must be usable as-is by an SDK pointed at the endpoint.
    via_env = _client_from_env(smoke.endpoint, "sqs")
    attrs = via_env.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    expect(attrs["QueueArn"] == smoke.outputs["WorkQueueArn"], f"ARN mismatch: {attrs}")
    return f"{url} (host {parsed.netloc}); works with AWS_ENDPOINT_URL={smoke.endpoint}"


def _client_from_env(endpoint: str, service: str):
    """A client configured the way the app configures one: only AWS_ENDPOINT_URL in the env."""
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        return boto3.session.Session(region_name=REGION, **CREDENTIALS).client(service)
    finally:
        if saved is None:
            del os.environ["AWS_ENDPOINT_URL"]
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


def _take(sqs, url: str, body: str, what: str) -> None:
    """Receive `body` from `url` (polling with a deadline) and delete it."""
    messages = wait_until(
        lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"), timeout=10, what=what
    )
    expect(messages[0]["Body"] == body, f"{what}: received {messages[0]['Body']!r}")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])


def roundtrip(smoke: Smoke) -> str:
    sqs = smoke.client("sqs")
    url = smoke.outputs["WorkQueueUrl"]
    body = f"smoke-{uuid.uuid4()}"
    sqs.send_message(QueueUrl=url, MessageBody=body)
    _take(sqs, url, body, "the sent message")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    left = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    expect(left == 0, f"{left} messages left after delete")
    return f"send/receive/delete ok; VisibilityTimeout={attrs['VisibilityTimeout']}"


def redrive(smoke: Smoke) -> str:
    sqs = smoke.client("sqs")
    url, dlq = smoke.outputs["WorkQueueUrl"], smoke.outputs["DeadLetterQueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    policy = json.loads(attrs["RedrivePolicy"])
    expect(policy["deadLetterTargetArn"] == smoke.outputs["DeadLetterQueueArn"], f"policy {policy}")
    max_receives = int(policy["maxReceiveCount"])
    body = f"poison-{uuid.uuid4()}"
    sqs.send_message(QueueUrl=url, MessageBody=body)
    for attempt in range(1, max_receives + 1):
        # VisibilityTimeout=0 hands the message straight back, like a consumer
        # that fails without deleting it; each receive still counts.
        got = wait_until(
            lambda: sqs.receive_message(
                QueueUrl=url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"]
            ).get("Messages"),
            timeout=10,
            what=f"receive #{attempt}",
        )
        expect(got[0]["Body"] == body, f"unexpected message {got[0]['Body']!r}")
    # The next receive finds the count exhausted and moves it to the DLQ.
    extra = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    expect(not extra, f"message delivered a {max_receives + 1}th time")
    _take(sqs, dlq, body, "the message in the dead-letter queue")
    return f"moved to DLQ after {max_receives} receives (maxReceiveCount={max_receives})"
