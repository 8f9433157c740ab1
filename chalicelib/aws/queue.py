"""SQS: work message shapes and batched sends.

Three kinds of message share the work queue:
  job     fan a job out into one `file` message per file
  file    start one file (record when it is due) or, once due (`readyAt`), count it
  bundle  build the job's zip once every file is counted; with `volume` n, build volume n of a
          job split by BUNDLE_MAX_BYTES (worker/volumes.py)
  callback  deliver attempt n of an ended job's webhook (chalicelib.jobs.callbacks)
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from chalicelib.aws import tracing

SQS_BATCH_LIMIT = 10
SEND_ATTEMPTS = 3
# SendMessage / SendMessageBatch DelaySeconds: 0-900 s, whole seconds (SQS API Reference,
# "SendMessage"); a longer wait is a chain of delayed messages (worker/processing.py).
MAX_DELAY_SECONDS = 900


class MessageKind(str, enum.Enum):
    JOB = "job"
    FILE = "file"
    BUNDLE = "bundle"
    CALLBACK = "callback"


class MalformedMessage(ValueError):
    """A body that is not a work message: retrying cannot help, it ends in the DLQ."""


class MisaddressedMessage(MalformedMessage):
    """A well-formed message its job does not match (a file outside the job): dead-lettered at once."""


@dataclass(frozen=True)
class WorkMessage:
    kind: MessageKind
    job_id: str
    file_id: int | None = None
    trace: str | None = None  # X-Ray trace header of the sender, continued by the worker
    attempt: int | None = None  # callback messages only: which delivery attempt, from 1
    volume: int | None = None  # bundle messages only: which volume to build, from 1 (None: plan them)
    # SQS MessageGroupId, not part of the body: the tenant a fair queue shares workers by (scheduling.group).
    group: str | None = None
    ready_at: float | None = None  # file messages only: when a started file is due (epoch seconds)
    total_files: int | None = None  # due messages only: the job's size, so counting needs no job read
    # SQS DelaySeconds of the send, not part of the body: how long the message stays invisible.
    delay_seconds: int = 0

    def to_body(self, trace_header: str | None = None) -> str:
        """The SQS body; `trace_header` (the sender's open trace) is used when the message carries none."""
        body: dict[str, Any] = {"v": 1, "kind": self.kind.value, "jobId": self.job_id}
        if self.file_id is not None:
            body["fileId"] = self.file_id
        if self.attempt is not None:
            body["attempt"] = self.attempt
        if self.ready_at is not None:
            body["readyAt"] = round(self.ready_at, 3)
        if self.total_files is not None:
            body["of"] = self.total_files
        if self.volume is not None:
            body["volume"] = self.volume
        trace = self.trace or trace_header
        if trace:
            body["trace"] = trace
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_body(cls, body: str) -> "WorkMessage":
        try:
            data = json.loads(body)
            kind = MessageKind(data["kind"])
            job_id = data["jobId"]
            file_id = data.get("fileId")
            trace = data.get("trace") if isinstance(data.get("trace"), str) else None
            attempt = data.get("attempt")
            ready_at = data.get("readyAt")
            total_files = data.get("of")
            volume = data.get("volume")
        except (ValueError, TypeError, KeyError) as exc:
            raise MalformedMessage(f"not a work message: {body[:200]!r}") from exc
        if not isinstance(job_id, str) or not job_id:
            raise MalformedMessage("jobId must be a non-empty string")
        if kind is MessageKind.FILE and (isinstance(file_id, bool) or not isinstance(file_id, int)):
            raise MalformedMessage("a file message needs an integer fileId")
        if kind is MessageKind.CALLBACK and (isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1):
            raise MalformedMessage("a callback message needs an attempt number >= 1")
        if ready_at is not None and (isinstance(ready_at, bool) or not isinstance(ready_at, (int, float))):
            raise MalformedMessage("readyAt must be a number of seconds since the epoch")
        if total_files is not None and (
            isinstance(total_files, bool) or not isinstance(total_files, int) or total_files < 1
        ):
            raise MalformedMessage("a due message's job size must be an integer >= 1")
        if volume is not None and (isinstance(volume, bool) or not isinstance(volume, int) or volume < 1):
            raise MalformedMessage("a bundle message's volume must be an integer >= 1")
        return cls(
            kind,
            job_id,
            file_id if kind is MessageKind.FILE else None,
            trace,
            attempt if kind is MessageKind.CALLBACK else None,
            ready_at=float(ready_at) if kind is MessageKind.FILE and ready_at is not None else None,
            total_files=total_files if kind is MessageKind.FILE else None,
            volume=volume if kind is MessageKind.BUNDLE else None,
        )


def _group_of(message: WorkMessage) -> dict[str, str]:
    """A standard queue accepts MessageGroupId since SQS fair queues (July 2025); it orders nothing there."""
    return {"MessageGroupId": message.group} if message.group else {}


def _delay_of(message: WorkMessage) -> dict[str, int]:
    if not 0 <= message.delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"DelaySeconds must be 0-{MAX_DELAY_SECONDS}, got {message.delay_seconds}")
    return {"DelaySeconds": message.delay_seconds} if message.delay_seconds else {}


class SendFailed(RuntimeError):
    pass


class WorkQueue:
    def __init__(
        self, sqs: Any, queue_url: str, trace_header: Callable[[], str | None] = tracing.current_header
    ) -> None:
        """`trace_header` gives the trace each sent message continues: the sender's, by default."""
        self._sqs = sqs
        self.url = queue_url
        self._trace_header = trace_header

    def send(self, message: WorkMessage, delay_seconds: int = 0) -> None:
        """`delay_seconds` (0-900, SQS's limit) keeps the message invisible that long: a webhook retry."""
        if delay_seconds:
            message = dataclasses.replace(message, delay_seconds=delay_seconds)
        self._sqs.send_message(
            QueueUrl=self.url,
            MessageBody=message.to_body(self._trace_header()),
            **_group_of(message),
            **_delay_of(message),
        )

    def send_many(self, messages: Sequence[WorkMessage]) -> None:
        """SendMessageBatch in tens; entries SQS rejects are retried, then raised."""
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            self._send_batch(messages[start : start + SQS_BATCH_LIMIT])

    def _send_batch(self, batch: Iterable[WorkMessage]) -> None:
        pending = {str(index): message for index, message in enumerate(batch)}
        trace_header = self._trace_header()
        for _ in range(SEND_ATTEMPTS):
            response = self._sqs.send_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {
                        "Id": entry_id,
                        "MessageBody": message.to_body(trace_header),
                        **_group_of(message),
                        **_delay_of(message),
                    }
                    for entry_id, message in pending.items()
                ],
            )
            pending = {failure["Id"]: pending[failure["Id"]] for failure in response.get("Failed", [])}
            if not pending:
                return
        raise SendFailed(f"SQS rejected {len(pending)} message(s) after {SEND_ATTEMPTS} attempts")

    def dead_letter(self, body: str, dead_letter_queue_url: str) -> None:
        """Sends a body straight to the DLQ, for a message no retry can make right."""
        self._sqs.send_message(QueueUrl=dead_letter_queue_url, MessageBody=body)

    def retry_after(self, receipt_handle: str, seconds: int) -> None:
        """Makes a received message visible again in `seconds` instead of after the queue's
        visibility timeout; its receive count still grows, so maxReceiveCount still bounds it."""
        self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)

    def backlog(self) -> int:
        """Messages visible and not yet received: work waiting for a worker. Delayed messages are
        not a backlog: they are files waiting for their due time, judged by it (worker/sweeper.py)."""
        names = ["ApproximateNumberOfMessages"]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def ping(self) -> None:
        self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
