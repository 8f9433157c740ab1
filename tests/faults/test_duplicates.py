"""At-least-once delivery, exaggerated: every message arrives at least twice, some three times, out of order.

Two sources of duplicates, both real SQS messages sent to the emulator:
- a thief re-sends the raw body of every message it manages to read off the
  work queue and puts the original back;
- a replayer sends, for every job, a copy of each message the service sends
  (job, each file, bundle: the exact wire format of chalicelib.aws.queue), one or
  two extra copies each, shuffled, at random moments, and again after the job ended.
The visibility timeout (1 s) is shorter than a big bundle build, so SQS itself
also redelivers a message while its first delivery is still being handled.
"""

from __future__ import annotations

import random
import threading
import time

from botocore.exceptions import ClientError

from chalicelib.aws.queue import MessageKind, WorkMessage
from tests.faults.client import (
    MISSING_IDS,
    SMALL_SAMPLES,
    MonotonicWatch,
    Tally,
    initiate,
    judge_completed,
    published_keys,
    result_keys,
    sample_sources,
    status,
    wait_for,
    wait_terminal,
)
from tests.support.aws import queue_depth

SCENARIO = "2 duplicate delivery"
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "4",
    "QUEUE_VISIBILITY_TIMEOUT": "1",
    "MAX_RECEIVE_COUNT": "50",  # redelivery every second must not dead-letter a long bundle build
    "DOWNLOAD_DELAY_MIN_MS": "100",
    "DOWNLOAD_DELAY_MAX_MS": "400",
    "STALLED_JOB_SECONDS": "600",
    "SWEEP_INTERVAL_SECONDS": "600",
}
JOBS = 10


def job_messages(job_id: str, file_ids) -> list[str]:
    messages = [WorkMessage(MessageKind.JOB, job_id), WorkMessage(MessageKind.BUNDLE, job_id)]
    messages += [WorkMessage(MessageKind.FILE, job_id, file_id) for file_id in dict.fromkeys(file_ids)]
    return [message.to_body() for message in messages]


class Thief(threading.Thread):
    """Reads messages off the work queue like a consumer, re-sends each distinct body once, releases the original."""

    def __init__(self, sqs, queue_url: str) -> None:
        super().__init__(daemon=True)
        self.sqs, self.queue_url = sqs, queue_url
        self.stop = threading.Event()
        self.copied: set[str] = set()

    def run(self) -> None:
        while not self.stop.is_set():
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            for message in batch:
                if message["Body"] not in self.copied:
                    self.copied.add(message["Body"])
                    self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message["Body"])
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                except ClientError as exc:  # redelivered to a consumer already (1 s visibility): fine
                    if exc.response["Error"]["Code"] != "ReceiptHandleIsInvalid":
                        raise


def replay(sqs, queue_url: str, bodies: list[str], rng: random.Random, spread_seconds: float) -> int:
    """Sends each body once or twice more, shuffled, spread over `spread_seconds`."""
    copies = [body for body in bodies for _ in range(1 + (rng.random() < 1 / 3))]
    rng.shuffle(copies)
    start = time.monotonic()
    for index, body in enumerate(copies):
        due = start + spread_seconds * index / max(1, len(copies))
        while time.monotonic() < due:  # pacing the injection, not synchronising on it
            time.sleep(0.01)
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    return len(copies)


def snapshot(stack, s3, bucket: str, job_id: str) -> tuple:
    document = status(stack, job_id)
    keys = published_keys(stack, job_id)
    head = s3.head_object(Bucket=bucket, Key=keys[0]) if keys else {}
    fields = ("status", "progress", "completedFiles", "availableFiles", "size", "updatedAt", "completedAt", "error")
    return tuple(document[name] for name in fields) + (tuple(keys), head.get("ETag"), head.get("LastModified"))


def test_every_message_twice_or_thrice_changes_nothing(fault_stack, record):
    stack, tally, rng = fault_stack, Tally(), random.Random(5)
    env = stack.stack_env()
    sqs, s3, queue = stack.aws("sqs"), stack.aws("s3"), env["WORK_QUEUE_URL"]
    thief = Thief(stack.aws("sqs"), queue)
    thief.start()
    jobs: dict[str, list[int]] = {}
    replayers = []
    try:
        for _ in range(JOBS):
            file_ids = rng.sample(SMALL_SAMPLES, rng.randint(1, 4)) + rng.sample(MISSING_IDS, rng.randint(0, 2))
            job_id = initiate(stack, file_ids, tally=tally).json()["jobId"]
            jobs[job_id] = file_ids
            worker = threading.Thread(
                target=replay,
                args=(stack.aws("sqs"), queue, job_messages(job_id, file_ids), random.Random(job_id), 3.0),
                daemon=True,
            )
            worker.start()
            replayers.append(worker)
        watch = MonotonicWatch()
        final = wait_terminal(stack, jobs, timeout=90, tally=tally, on_sample=watch)
    finally:
        for worker in replayers:
            worker.join(timeout=30)
        thief.stop.set()
        thief.join(timeout=10)
    record.jobs = len(jobs)
    sources = sample_sources(SMALL_SAMPLES)
    judge_completed(stack, tally, final, jobs, sources)
    before = {job_id: snapshot(stack, s3, env["S3_BUCKET_NAME"], job_id) for job_id in final}

    # Late duplicates of everything, after every job ended: nothing may move.
    late = [body for job_id, file_ids in jobs.items() for body in job_messages(job_id, file_ids)]
    replay(sqs, queue, late, rng, 1.0)
    wait_for(lambda: queue_depth(sqs, queue) == 0, timeout=60, what="the late duplicates to be consumed")
    after = {job_id: snapshot(stack, s3, env["S3_BUCKET_NAME"], job_id) for job_id in final}
    changed = [job_id for job_id in final if before[job_id] != after[job_id]]
    tally.miscounted += [f"{job_id}: changed by late duplicates" for job_id in changed]
    tally.fill(record)
    record.notes.append(
        f"{watch.samples} status samples, {len(thief.copied)} raw bodies re-sent by the thief, "
        f"{len(late)} late duplicates"
    )

    assert watch.samples > len(jobs)
    assert watch.regressions == []
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    for job_id, document in final.items():
        assert result_keys(s3, env["S3_BUCKET_NAME"], job_id) == published_keys(stack, job_id)
        assert len(published_keys(stack, job_id)) == (1 if document["availableFiles"] else 0)


def open_uploads(s3, bucket: str, job_id: str) -> int:
    """Bundle builds of this job still uploading (each build is one multipart upload)."""
    return len(s3.list_multipart_uploads(Bucket=bucket, Prefix=f"results/{job_id}/").get("Uploads", []))


def test_bundle_build_outlasting_the_visibility_timeout_keeps_its_bundle(fault_stack, record):
    """SQS redelivers the bundle message (same message id) while the first build still runs."""
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    s3 = stack.aws("s3")
    sources = {file_id: random.Random(file_id).randbytes(10 * 1024 * 1024) for file_id in range(82000, 82010)}
    for file_id, body in sources.items():
        s3.put_object(Bucket=env["S3_BUCKET_NAME"], Key=f"downloads/{file_id}.zip", Body=body)

    job_id = initiate(stack, list(sources), tally=tally).json()["jobId"]
    record.jobs = 1
    concurrent_builds = []
    final = wait_terminal(
        stack,
        [job_id],
        timeout=90,
        tally=tally,
        on_sample=lambda *_: concurrent_builds.append(open_uploads(s3, env["S3_BUCKET_NAME"], job_id)),
    )
    # The first build to finish deletes the message, so an empty queue does not mean every build
    # has finished; no open upload does. Judge once every build has finished and acted.
    wait_for(
        lambda: open_uploads(s3, env["S3_BUCKET_NAME"], job_id) == 0,
        timeout=60,
        what="every concurrent build of the bundle to finish",
    )
    judge_completed(stack, tally, final, {job_id: list(sources)}, sources)
    tally.fill(record)
    record.notes.append(f"up to {max(concurrent_builds)} builds of the bundle ran at once")

    assert max(concurrent_builds) >= 2, "no redelivery overlapped the build: nothing was injected"

    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert len(published_keys(stack, job_id)) == 1
    assert result_keys(s3, env["S3_BUCKET_NAME"], job_id) == published_keys(stack, job_id)
