"""SQS: work message shapes, rejection of what is not one, batched sends with retry."""

from __future__ import annotations

import json

import pytest

from chalicelib.aws.queue import MalformedMessage, MessageKind, SendFailed, WorkMessage, WorkQueue
from tests.support.aws import queue_depth, receive_records

JOB_ID = "3f0c2f7e-1111-4111-8111-111111111111"


def test_file_message_body_is_compact_versioned_json():
    body = WorkMessage(MessageKind.FILE, JOB_ID, 70000).to_body()

    assert body == '{"v":1,"kind":"file","jobId":"3f0c2f7e-1111-4111-8111-111111111111","fileId":70000}'


@pytest.mark.parametrize(
    "message",
    [
        WorkMessage(MessageKind.JOB, JOB_ID),
        WorkMessage(MessageKind.FILE, JOB_ID, 70007),
        WorkMessage(MessageKind.BUNDLE, JOB_ID),
        WorkMessage(MessageKind.FILE, JOB_ID, 70007, ready_at=1_800_000_030.5, total_files=1000),
    ],
)
def test_every_message_kind_round_trips(message):
    assert WorkMessage.from_body(message.to_body()) == message


def test_file_id_on_a_non_file_message_is_dropped():
    body = json.dumps({"v": 1, "kind": "bundle", "jobId": JOB_ID, "fileId": 70000})

    assert WorkMessage.from_body(body) == WorkMessage(MessageKind.BUNDLE, JOB_ID)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[]",
        "null",
        json.dumps({"v": 1, "jobId": JOB_ID}),
        json.dumps({"v": 1, "kind": "explode", "jobId": JOB_ID}),
        json.dumps({"v": 1, "kind": "job"}),
        json.dumps({"v": 1, "kind": "job", "jobId": ""}),
        json.dumps({"v": 1, "kind": "job", "jobId": 42}),
        json.dumps({"v": 1, "kind": "file", "jobId": JOB_ID}),
        json.dumps({"v": 1, "kind": "file", "jobId": JOB_ID, "fileId": "70000"}),
        json.dumps({"v": 1, "kind": "file", "jobId": JOB_ID, "fileId": True}),
        json.dumps({"v": 1, "kind": "file", "jobId": JOB_ID, "fileId": 70000, "readyAt": 1.0, "of": 0}),
        json.dumps({"v": 1, "kind": "file", "jobId": JOB_ID, "fileId": 70000, "readyAt": 1.0, "of": "9"}),
        json.dumps({"v": 1, "kind": "file", "jobId": JOB_ID, "fileId": 70000, "readyAt": 1.0, "of": True}),
    ],
)
def test_body_that_is_not_a_work_message_is_malformed(body):
    with pytest.raises(MalformedMessage):
        WorkMessage.from_body(body)


class RecordingSqs:
    """SendMessageBatch stand-in: rejects the entries it is told to, `rejections` times each."""

    def __init__(self, reject_bodies=(), rejections=1):
        self.batches: list[list[str]] = []
        self._left = {body: rejections for body in reject_bodies}

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 (boto3's names)
        self.batches.append([entry["MessageBody"] for entry in Entries])
        failed = []
        for entry in Entries:
            if self._left.get(entry["MessageBody"], 0) > 0:
                self._left[entry["MessageBody"]] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
        return {"Successful": [], "Failed": failed}


def file_messages(count):
    return [WorkMessage(MessageKind.FILE, JOB_ID, 70000 + index) for index in range(count)]


def test_many_messages_go_out_in_batches_of_ten():
    sqs = RecordingSqs()

    WorkQueue(sqs, "queue-url").send_many(file_messages(23))

    assert [len(batch) for batch in sqs.batches] == [10, 10, 3]


def test_entries_sqs_rejects_are_retried_alone():
    messages = file_messages(3)
    sqs = RecordingSqs(reject_bodies=[messages[1].to_body()])

    WorkQueue(sqs, "queue-url").send_many(messages)

    assert sqs.batches == [[message.to_body() for message in messages], [messages[1].to_body()]]


def test_entries_rejected_on_every_attempt_raise():
    messages = file_messages(2)
    sqs = RecordingSqs(reject_bodies=[messages[0].to_body()], rejections=99)

    with pytest.raises(SendFailed) as error:
        WorkQueue(sqs, "queue-url").send_many(messages)

    assert str(error.value) == "SQS rejected 1 message(s) after 3 attempts"
    assert len(sqs.batches) == 3


def test_batched_messages_reach_the_queue(deployed):
    queue = WorkQueue(deployed.sqs, deployed.queue_url)

    queue.send_many(file_messages(23))

    assert queue_depth(deployed.sqs, deployed.queue_url) == 23


def test_sent_message_is_received_as_sent(deployed):
    WorkQueue(deployed.sqs, deployed.queue_url).send(WorkMessage(MessageKind.JOB, JOB_ID))

    [record] = receive_records(deployed.queue_url)

    received = WorkMessage.from_body(record["body"])
    assert (received.kind, received.job_id, received.file_id) == (MessageKind.JOB, JOB_ID, None)
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_a_callback_message_carries_its_attempt():
    message = WorkMessage(MessageKind.CALLBACK, JOB_ID, attempt=3)

    assert WorkMessage.from_body(message.to_body()) == message


@pytest.mark.parametrize("attempt", [None, 0, "2", True])
def test_a_callback_message_without_a_valid_attempt_is_malformed(attempt):
    body = json.dumps({"v": 1, "kind": "callback", "jobId": JOB_ID, "attempt": attempt})

    with pytest.raises(MalformedMessage):
        WorkMessage.from_body(body)


def test_a_delayed_send_stays_invisible(deployed):
    WorkQueue(deployed.sqs, deployed.queue_url).send(WorkMessage(MessageKind.CALLBACK, JOB_ID, attempt=2), 60)

    attributes = deployed.sqs.get_queue_attributes(
        QueueUrl=deployed.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_messages_carry_their_group_on_the_standard_queue_for_sqs_fair_queues(deployed):
    queue = WorkQueue(deployed.sqs, deployed.queue_url)

    queue.send(WorkMessage(MessageKind.JOB, JOB_ID, group="tenant-a"))
    queue.send_many([WorkMessage(MessageKind.FILE, JOB_ID, 70000, group="tenant-b")])

    received = deployed.sqs.receive_message(
        QueueUrl=deployed.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    )["Messages"]
    assert sorted(message["Attributes"]["MessageGroupId"] for message in received) == ["tenant-a", "tenant-b"]


def test_a_failed_message_can_be_made_visible_again_sooner(deployed):
    queue = WorkQueue(deployed.sqs, deployed.queue_url)
    queue.send(WorkMessage(MessageKind.JOB, JOB_ID))
    [record] = receive_records(deployed.queue_url)

    queue.retry_after(record["receiptHandle"], 0)

    [again] = receive_records(deployed.queue_url)
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
