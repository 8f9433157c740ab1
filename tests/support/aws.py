"""Test helpers that talk to (moto-emulated) AWS like the real system does."""

from __future__ import annotations

import io
import itertools
import zipfile
from pathlib import Path

import boto3

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
_ids = itertools.count(1)


def deploy_template_in_moto(visibility_timeout: int = 30, max_receive_count: int = 3) -> dict:
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="delineate-test",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "VisibilityTimeoutSeconds", "ParameterValue": str(visibility_timeout)},
            {"ParameterKey": "MaxReceiveCount", "ParameterValue": str(max_receive_count)},
        ],
    )
    stack = cloudformation.describe_stacks(StackName="delineate-test")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack["StackStatus"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def zip_bytes(file_id: int, payload_size: int = 2048) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"file-{file_id}.bin", bytes((file_id + i) % 251 for i in range(payload_size)))
    return buffer.getvalue()


def put_source(bucket: str, file_id: int, payload_size: int = 2048) -> bytes:
    body = zip_bytes(file_id, payload_size)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"downloads/{file_id}.zip", Body=body)
    return body


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict:
    """A Lambda SQS record. Built by hand: chalice.test gives every record one messageId."""
    return {
        "messageId": message_id or f"msg-{next(_ids)}",
        "receiptHandle": f"handle-{next(_ids)}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "0"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:delineate-work",
        "awsRegion": "us-east-1",
    }


def receive_records(queue_url: str, max_messages: int = 10) -> list[dict]:
    """Receives from SQS and shapes the messages as Lambda would."""
    response = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=max_messages, AttributeNames=["All"], WaitTimeSeconds=0
    )
    return [
        {
            **sqs_record(message["Body"], message["MessageId"], int(message["Attributes"]["ApproximateReceiveCount"])),
            "receiptHandle": message["ReceiptHandle"],
        }
        for message in response.get("Messages", [])
    ]


def delete_records(queue_url: str, records: list[dict]) -> None:
    sqs = boto3.client("sqs")
    for record in records:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])


def drain(handler, queue_url: str, max_rounds: int = 500) -> int:
    """Runs the SQS handler like Lambda until the queue is empty; returns records handled."""
    handled = 0
    for _ in range(max_rounds):
        records = receive_records(queue_url)
        if not records:
            return handled
        result = handler({"Records": records}, None)
        failed = {failure["itemIdentifier"] for failure in (result or {}).get("batchItemFailures", [])}
        delete_records(queue_url, [record for record in records if record["messageId"] not in failed])
        handled += len(records)
    raise AssertionError(f"queue not drained after {max_rounds} rounds")


def receive_records_visible_again(queue_url: str, max_messages: int = 10) -> list[dict]:
    """Like receive_records, with a zero visibility timeout: a record that is not
    deleted is redelivered on the next receive, so redrive is reached without waiting."""
    response = boto3.client("sqs").receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        AttributeNames=["All"],
        WaitTimeSeconds=0,
        VisibilityTimeout=0,
    )
    return [
        {
            **sqs_record(message["Body"], message["MessageId"], int(message["Attributes"]["ApproximateReceiveCount"])),
            "receiptHandle": message["ReceiptHandle"],
        }
        for message in response.get("Messages", [])
    ]


DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def queue_depth(sqs, queue_url: str) -> int:
    """Messages waiting, in flight or delayed: counted without receiving (receives count towards redrive).

    The one depth of the unit and fault tiers; `sqs` is moto's client or a dev stack's."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES)
