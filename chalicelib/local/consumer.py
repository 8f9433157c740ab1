"""A local stand-in for Lambda's SQS event source mapping (`chalice local` runs no SQS handlers).

It long-polls the work queue and calls the very handler registered in app.py
with a Lambda-shaped event, keeping Lambda's semantics: records are deleted only
after success, records named in `batchItemFailures` (or the whole batch, if the
handler raises) stay on the queue until their visibility timeout lapses, and
SQS itself moves a message to the DLQ after the queue's maxReceiveCount.

Run as its own process: python -m chalicelib.local.consumer
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws.clients import WORKER_CONFIG

log = logging.getLogger("delineate.consumer")
LONG_POLL_SECONDS = 2  # short enough to stop promptly on SIGTERM
RECEIVE_LIMIT = 10  # the most messages one ReceiveMessage returns (SQS API Reference, MaxNumberOfMessages)


class LambdaContext:
    """The few context attributes handlers may read."""

    def __init__(self, function_name: str, timeout_seconds: float) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_record(message: dict, queue_arn: str, region: str) -> dict:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType")}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class Consumer:
    def __init__(self, handler: Any, sqs: Any, queue_url: str, batch_size: int, function_timeout: float) -> None:
        self._handler, self._sqs, self._queue_url = handler, sqs, queue_url
        self._batch_size = batch_size
        self._timeout = function_timeout
        self._region = sqs.meta.region_name
        self._queue_arn = ""
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                # Emulator down or restarting: keep trying, like the Lambda poller does.
                log.warning("queue unreachable (%s); retrying", type(exc).__name__)
                self.stopping.wait(1.0)

    def poll_once(self) -> int:
        if not self._queue_arn:
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = attributes["Attributes"]["QueueArn"]
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max(self._batch_size, RECEIVE_LIMIT),
            WaitTimeSeconds=LONG_POLL_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = fair_order(response.get("Messages", []))
        for start in range(0, len(messages), self._batch_size):
            self.invoke(messages[start : start + self._batch_size])
        return len(messages)

    def invoke(self, messages: list[dict]) -> None:
        records = [lambda_record(message, self._queue_arn, self._region) for message in messages]
        try:
            result = self._handler({"Records": records}, LambdaContext("process_work", self._timeout))
        except Exception:  # Lambda: an exception fails the whole batch; SQS redelivers it
            log.exception("handler raised; batch of %d returns to the queue", len(records))
            return
        failed = {failure["itemIdentifier"] for failure in (result or {}).get("batchItemFailures", [])}
        done = [record for record in records if record["messageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]} for index, record in enumerate(done)
                ],
            )


def fair_order(messages: list[dict]) -> list[dict]:
    """What one receive took, in the order an SQS fair queue would serve it.

    In the cloud the work queue is a fair queue: while one MessageGroupId (a job,
    or its owner) holds a disproportionate share of the backlog, SQS serves the
    other groups first. moto serves oldest first, so a 1,000-file job's due files
    would run ahead of a small job's. Here each receive takes up to ten messages
    and hands them on round-robin over their groups, the smallest group first."""
    groups: dict[str, list[dict]] = {}
    for message in messages:
        groups.setdefault(message.get("Attributes", {}).get("MessageGroupId", ""), []).append(message)
    queues = sorted(groups.values(), key=len)
    ordered: list[dict] = []
    while queues:
        ordered.extend(queue.pop(0) for queue in queues)
        queues = [queue for queue in queues if queue]
    return ordered


def sqs_batch_size(app: Any, handler_name: str) -> int:
    """The batch size declared on @app.on_sqs_message, as the cloud mapping would use it."""
    for source in app.event_sources:
        if getattr(source, "name", None) == handler_name:
            return int(getattr(source, "batch_size", 1) or 1)
    return 1


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s consumer[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    import app as chalice_app  # the project's app.py: the very handler deployed to Lambda

    consumer = Consumer(
        handler=chalice_app.process_work,
        sqs=boto3.client("sqs", config=WORKER_CONFIG),
        queue_url=os.environ["WORK_QUEUE_URL"],
        batch_size=sqs_batch_size(chalice_app.app, "process_work"),
        function_timeout=float(os.environ.get("WORKER_TIMEOUT_SECONDS", "300")),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: consumer.stopping.set())
    # Lambda runs a function's init (imports, clients) before its first event; do it here too, so
    # a fresh stack's first job does not pay each consumer's start-up on its critical path.
    chalice_app.runtime.worker()
    consumer.run()


if __name__ == "__main__":
    main()
