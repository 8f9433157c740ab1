"""Inspect or redrive the dead-letter queue of the running dev stack.

It reads $DEV_STATE_DIR/stack.env (default .dev/stack.env), written by `make dev`,
so it finds the stack that `make dev` with the same DEV_STATE_DIR started.

  python -m chalicelib.local.dlq inspect     print dead-lettered messages (left in place)
  python -m chalicelib.local.dlq redrive     move them back to the work queue

In the cloud, use the console's "Start DLQ redrive" or
`aws sqs start-message-move-task --source-arn <DeadLetterQueueArn>`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3

from chalicelib.local.processes import PROJECT_DIR


def state_dir() -> Path:
    return Path(os.environ.get("DEV_STATE_DIR") or PROJECT_DIR / ".dev")


def _load_stack_env() -> None:
    """The running stack's endpoint and queues win over the shell's: they name the stack to act on."""
    path = state_dir() / "stack.env"
    if not path.exists():
        sys.exit(f"no running dev stack ({path} missing): start it with `make dev`")
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name:
            os.environ[name] = value


def _receive(sqs: Any, url: str, visibility: int) -> list[dict]:
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, AttributeNames=["All"], WaitTimeSeconds=1
    ).get("Messages", [])


def inspect(sqs: Any, dlq_url: str) -> int:
    seen: dict[str, dict] = {}
    for _ in range(100):
        batch = _receive(sqs, dlq_url, visibility=5)
        if not batch or all(message["MessageId"] in seen for message in batch):
            break
        seen.update({message["MessageId"]: message for message in batch})
    for message in seen.values():
        print(
            json.dumps(
                {
                    "messageId": message["MessageId"],
                    "body": message["Body"],
                    "receiveCount": message["Attributes"].get("ApproximateReceiveCount"),
                }
            )
        )
        # Leave it in place and visible, so a redrive right after an inspect finds it.
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    print(f"{len(seen)} message(s) in the dead-letter queue", file=sys.stderr)
    return len(seen)


def redrive(sqs: Any, dlq_url: str, work_url: str) -> int:
    moved = 0
    while batch := _receive(sqs, dlq_url, visibility=30):
        for message in batch:
            sqs.send_message(QueueUrl=work_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    print(f"moved {moved} message(s) back to the work queue", file=sys.stderr)
    return moved


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in ("inspect", "redrive"):
        sys.exit(__doc__)
    _load_stack_env()
    sqs = boto3.client("sqs")
    if argv[0] == "inspect":
        inspect(sqs, os.environ["DEAD_LETTER_QUEUE_URL"])
    else:
        redrive(sqs, os.environ["DEAD_LETTER_QUEUE_URL"], os.environ["WORK_QUEUE_URL"])


if __name__ == "__main__":
    main(sys.argv[1:])
