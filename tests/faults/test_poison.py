"""Poison messages end in the dead-letter queue after MAX_RECEIVE_COUNT receives; the rest carries on.

Three kinds of poison, sent while good jobs run:
- bodies that are not work messages at all;
- a work message for a job the table does not hold;
- a file whose source exists but can never be read: an object in the GLACIER
  storage class, not restored (HEAD answers, GET is refused), so preparing it
  raises every time and its job must end `failed` with a readable reason.
Then `python -m chalicelib.local.dlq inspect|redrive` is run against this stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from chalicelib.aws.queue import MessageKind, WorkMessage
from chalicelib.local.processes import PROJECT_DIR
from tests.faults.client import (
    SMALL_SAMPLES,
    Tally,
    initiate,
    judge_completed,
    sample_sources,
    status,
    wait_for,
    wait_terminal,
)
from tests.support.aws import queue_depth

SCENARIO = "3 poison messages + DLQ"
MAX_RECEIVES = 3
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "3",
    "QUEUE_VISIBILITY_TIMEOUT": "1",
    "MAX_RECEIVE_COUNT": str(MAX_RECEIVES),
    "DOWNLOAD_DELAY_MIN_MS": "100",
    "DOWNLOAD_DELAY_MAX_MS": "300",
    "STALLED_JOB_SECONDS": "600",
    "SWEEP_INTERVAL_SECONDS": "600",
}
ARCHIVED_FILE = 83000
MALFORMED = ["this is not json", json.dumps({"v": 1, "kind": "file", "jobId": "x"}), json.dumps([1, 2, 3])]


def dead_letters(sqs, dlq_url: str) -> int:
    return int(
        sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


def dlq_command(stack, action: str) -> subprocess.CompletedProcess:
    """`make dlq-inspect` / `make dlq-redrive`, pointed at this stack by DEV_STATE_DIR."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["DEV_STATE_DIR"] = str(stack.state_dir)
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.local.dlq", action],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_poison_is_dead_lettered_its_job_fails_and_other_jobs_complete(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    sqs, s3 = stack.aws("sqs"), stack.aws("s3")
    s3.put_object(
        Bucket=env["S3_BUCKET_NAME"],
        Key=f"downloads/{ARCHIVED_FILE}.zip",
        Body=b"PK\x03\x04 archived",
        StorageClass="GLACIER",
    )
    good = {}
    for index in range(4):
        file_ids = list(SMALL_SAMPLES[index : index + 3])
        good[initiate(stack, file_ids, tally=tally).json()["jobId"]] = file_ids
    poisoned = initiate(stack, [SMALL_SAMPLES[0], ARCHIVED_FILE, SMALL_SAMPLES[1]], tally=tally).json()["jobId"]
    unknown_job = str(uuid.uuid4())
    for body in MALFORMED + [WorkMessage(MessageKind.JOB, unknown_job).to_body()]:
        sqs.send_message(QueueUrl=env["WORK_QUEUE_URL"], MessageBody=body)
    for _ in range(4):  # more good jobs after the poison
        file_ids = list(SMALL_SAMPLES[4:7])
        good[initiate(stack, file_ids, tally=tally).json()["jobId"]] = file_ids
    record.jobs = len(good) + 1

    final = wait_terminal(stack, [*good, poisoned], timeout=60, tally=tally)
    judge_completed(stack, tally, final, good, sample_sources(SMALL_SAMPLES))
    failed = final.get(poisoned, {})
    if failed.get("status") != "failed":
        tally.lost.append(f"{poisoned}: {failed.get('status')} instead of failed")
    # 3 malformed + 1 unknown job + the archived file's message
    expected_dead = len(MALFORMED) + 2
    wait_for(
        lambda: dead_letters(sqs, env["DEAD_LETTER_QUEUE_URL"]) == expected_dead,
        timeout=30,
        what=f"{expected_dead} messages in the DLQ",
    )
    wait_for(lambda: queue_depth(sqs, env["WORK_QUEUE_URL"]) == 0, timeout=30, what="an empty work queue")
    tally.fill(record)

    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    # a fixed sentence: the storage class and the exception stay in the worker's log
    assert failed["error"] == f"file {ARCHIVED_FILE} is archived and could not be read after {MAX_RECEIVES} attempts"
    assert failed["downloadUrl"] is None
    assert status(stack, poisoned)["status"] == "failed"

    # make dlq-inspect: every dead letter printed, and left in place
    inspected = dlq_command(stack, "inspect")
    assert inspected.returncode == 0, inspected.stderr
    bodies = sorted(json.loads(line)["body"] for line in inspected.stdout.splitlines())
    assert bodies == sorted(
        MALFORMED
        + [
            WorkMessage(MessageKind.JOB, unknown_job).to_body(),
            *[body for body in bodies if f'"fileId":{ARCHIVED_FILE}' in body],
        ]
    )
    assert sum(f'"fileId":{ARCHIVED_FILE}' in body for body in bodies) == 1
    assert f"{expected_dead} message(s) in the dead-letter queue" in inspected.stderr
    again = dlq_command(stack, "inspect")
    assert f"{expected_dead} message(s)" in again.stderr

    # make dlq-redrive: all go back; the failed job's file message is now a no-op (the job stays failed),
    # the rest fail MAX_RECEIVES times again and return to the DLQ.
    redriven = dlq_command(stack, "redrive")
    assert redriven.returncode == 0, redriven.stderr
    assert f"moved {expected_dead} message(s) back to the work queue" in redriven.stderr
    wait_for(
        lambda: (
            dead_letters(sqs, env["DEAD_LETTER_QUEUE_URL"]) == expected_dead - 1
            and queue_depth(sqs, env["WORK_QUEUE_URL"]) == 0
        ),
        timeout=30,
        what="redriven poison back in the DLQ, the stale file message consumed",
    )
    after = status(stack, poisoned)
    assert (after["status"], after["error"]) == ("failed", failed["error"])


def test_dlq_command_without_a_stack_says_how_to_start_one(tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["DEV_STATE_DIR"] = str(tmp_path / "nothing-here")

    result = subprocess.run(
        [sys.executable, "-m", "chalicelib.local.dlq", "inspect"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "nothing-here/stack.env missing" in result.stderr and "make dev" in result.stderr
