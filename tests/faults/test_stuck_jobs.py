"""Work messages that vanish: the sweeper finds the stuck job and resumes it, or fails it, in bounded time.

Two ways to lose work, both on the real queue:
- purge it (SQS allows one purge a minute, so once per stack) while consumers
  are mid-job, killing them with what they hold (under fair scheduling a held
  file, once finished, would release the next): the job's files are gone;
- freeze the consumers (SIGSTOP) and take the job's messages off the queue
  (receive + delete) before they can: the queue's DelaySeconds holds the new
  message back longer than a frozen consumer's pending long poll can last
  (chalicelib.local.consumer.LONG_POLL_SECONDS), so no frozen consumer holds it.
"""

from __future__ import annotations

import os
import signal
import time

from chalicelib.aws.queue import WorkMessage
from chalicelib.local.consumer import LONG_POLL_SECONDS
from chalicelib.local.samples import SAMPLE_FILE_IDS
from tests.faults.client import (
    SMALL_SAMPLES,
    Tally,
    initiate,
    job_item,
    judge_completed,
    sample_sources,
    status,
    wait_for,
    wait_terminal,
)

SCENARIO = "5 stuck jobs (sweeper)"
STALLED, SWEEP_INTERVAL, MAX_RESUMES = 3, 0.5, 2
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "2",
    "QUEUE_VISIBILITY_TIMEOUT": "5",
    "DOWNLOAD_DELAY_MIN_MS": "400",
    "DOWNLOAD_DELAY_MAX_MS": "600",
    "STALLED_JOB_SECONDS": str(STALLED),
    "SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL),
    "MAX_JOB_RESUMES": str(MAX_RESUMES),
}
# updatedAt has one-second resolution, so "idle for STALLED" is seen up to 1 s late, plus one sweep interval.
DETECTION_BOUND = STALLED + 1 + SWEEP_INTERVAL


def hold_new_messages(sqs, queue_url: str, seconds: int) -> None:
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"DelaySeconds": str(seconds)})


HOLD_SECONDS = LONG_POLL_SECONDS + 2


def initiate_held_back(stack, sqs, queue_url: str, file_ids, tally) -> str:
    """Initiates while new messages are delayed HOLD_SECONDS (the delay is fixed per message at send time)."""
    hold_new_messages(sqs, queue_url, HOLD_SECONDS)
    try:
        return initiate(stack, file_ids, tally=tally).json()["jobId"]
    finally:
        hold_new_messages(sqs, queue_url, 0)


def steal(sqs, queue_url: str, job_id: str) -> int:
    """Receives every visible message; deletes this job's (lost work), puts any other back."""
    stolen = 0
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            if WorkMessage.from_body(message["Body"]).job_id == job_id:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                stolen += 1
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    return stolen


def resumes(stack, job_id: str) -> int:
    env = stack.stack_env()
    return int(job_item(stack.aws("dynamodb"), env["JOBS_TABLE_NAME"], job_id).get("resumes", {"N": "0"})["N"])


def test_queued_job_whose_message_was_lost_is_resumed_and_completes(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    sqs, queue = stack.aws("sqs"), env["WORK_QUEUE_URL"]
    file_ids = list(SMALL_SAMPLES[:3]) + [70001]

    with stack.consumers_paused():
        job_id = initiate_held_back(stack, sqs, queue, file_ids, tally)
        wait_for(lambda: steal(sqs, queue, job_id), timeout=HOLD_SECONDS + 5, what="the job message to steal")
    lost_at = time.monotonic()
    record.jobs = 1
    assert status(stack, job_id)["status"] == "queued"

    final = wait_terminal(stack, [job_id], timeout=DETECTION_BOUND + 15, tally=tally)
    elapsed = time.monotonic() - lost_at
    judge_completed(stack, tally, final, {job_id: file_ids}, sample_sources(file_ids))
    tally.fill(record)
    record.notes.append(f"resumed and completed {elapsed:.1f}s after the loss (detection bound {DETECTION_BOUND}s)")

    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert resumes(stack, job_id) == 1
    assert elapsed < DETECTION_BOUND + 10


def test_processing_job_whose_file_messages_were_purged_is_resumed_and_completes(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    sqs, queue = stack.aws("sqs"), env["WORK_QUEUE_URL"]
    file_ids = list(SAMPLE_FILE_IDS[:10])

    job_id = initiate(stack, file_ids, tally=tally).json()["jobId"]
    record.jobs = 1
    wait_for(
        lambda: status(stack, job_id)["completedFiles"] >= 1, timeout=20, interval=0.05, what="the first file counted"
    )
    # Under fair scheduling a consumer finishing a held file releases the next one, so a
    # purge alone loses nothing: the consumers die with what they hold, then the queue is purged.
    holders = stack.consumer_pids()
    for pid in holders:
        os.kill(pid, signal.SIGKILL)
    sqs.purge_queue(QueueUrl=queue)
    lost_at = time.monotonic()
    stack.wait_for_consumers(len(holders), replacing=tuple(holders))
    stuck = status(stack, job_id)

    final = wait_terminal(stack, [job_id], timeout=DETECTION_BOUND + 20, tally=tally)
    elapsed = time.monotonic() - lost_at
    judge_completed(stack, tally, final, {job_id: file_ids}, sample_sources(file_ids))
    tally.fill(record)
    record.notes.append(f"stuck at {stuck['completedFiles']}/10 files; completed {elapsed:.1f}s after the purge")

    assert stuck["status"] == "processing" and stuck["completedFiles"] < len(file_ids), "nothing was lost"
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert resumes(stack, job_id) == 1
    assert elapsed < DETECTION_BOUND + 15


def test_job_whose_work_keeps_vanishing_is_failed_after_max_resumes(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    sqs, queue = stack.aws("sqs"), env["WORK_QUEUE_URL"]

    bound = (MAX_RESUMES + 1) * DETECTION_BOUND + HOLD_SECONDS + 5
    with stack.consumers_paused():
        job_id = initiate_held_back(stack, sqs, queue, [SMALL_SAMPLES[0]], tally)
        lost_at = time.monotonic()
        record.jobs = 1

        def lost_until_terminal():
            steal(sqs, queue, job_id)  # the job message, then every resume's message, vanish too
            return status(stack, job_id, tally=tally)["status"] in ("completed", "failed", "cancelled")

        wait_for(lost_until_terminal, timeout=bound, interval=0.2, what="the sweeper to give up on the job")
    elapsed = time.monotonic() - lost_at
    final = status(stack, job_id)
    if final["status"] != "failed":
        tally.lost.append(f"{job_id}: {final['status']}")
    tally.fill(record)
    record.notes.append(f"failed {elapsed:.1f}s after initiate (bound {bound:.0f}s): {final['error']}")

    assert final["status"] == "failed"
    assert final["error"] == f"stalled: no progress for {STALLED}s after {MAX_RESUMES} resumes"
    assert resumes(stack, job_id) == MAX_RESUMES
    assert tally.server_errors == 0
