"""A consumer is SIGKILLed while it holds work: SQS redelivers it after the visibility timeout.

The sweeper is held back (600 s), so only redelivery can finish these jobs.
"""

from __future__ import annotations

import os
import random
import signal
import time

from chalicelib.local.samples import SAMPLE_FILE_IDS
from tests.faults.client import (
    Tally,
    in_flight,
    initiate,
    job_item,
    judge_completed,
    published_keys,
    result_keys,
    sample_sources,
    wait_for,
    wait_terminal,
)

SCENARIO = "1 consumer SIGKILL"
VISIBILITY = 3
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "2",
    "QUEUE_VISIBILITY_TIMEOUT": str(VISIBILITY),
    "DOWNLOAD_DELAY_MIN_MS": "1500",
    "DOWNLOAD_DELAY_MAX_MS": "2000",
    "STALLED_JOB_SECONDS": "600",
    "SWEEP_INTERVAL_SECONDS": "600",
}
LARGE_SOURCE_BYTES = 8 * 1024 * 1024


def test_consumer_killed_mid_file_its_message_is_redelivered_and_the_job_completes(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    sqs = stack.aws("sqs")
    consumers = stack.wait_for_consumers(2)
    file_ids = list(SAMPLE_FILE_IDS[:6])

    job_id = initiate(stack, file_ids, tally=tally).json()["jobId"]
    record.jobs = 1
    # Both consumers hold a file message (batch size 1, so one each) of this job, mid-delay.
    wait_for(
        lambda: in_flight(sqs, env["WORK_QUEUE_URL"]) >= 2,
        timeout=20,
        interval=0.05,
        what="both consumers holding a file",
    )
    victim = random.choice(consumers)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    replacements = stack.wait_for_consumers(2, replacing=(victim,))

    final = wait_terminal(stack, [job_id], timeout=60, tally=tally)
    judge_completed(stack, tally, final, {job_id: file_ids}, sample_sources(file_ids))
    tally.fill(record)
    record.notes.append(f"killed consumer {victim}; completed {time.monotonic() - killed_at:.1f}s after the kill")

    assert victim not in replacements
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert result_keys(stack.aws("s3"), env["S3_BUCKET_NAME"], job_id) == published_keys(stack, job_id)


def test_consumers_killed_during_the_bundle_build_the_bundle_is_built_once(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    s3, dynamodb = stack.aws("s3"), stack.aws("dynamodb")
    # Sources big enough that building their bundle takes a while: 6 x 8 MiB.
    sources = {file_id: random.Random(file_id).randbytes(LARGE_SOURCE_BYTES) for file_id in range(81000, 81006)}
    for file_id, body in sources.items():
        s3.put_object(Bucket=env["S3_BUCKET_NAME"], Key=f"downloads/{file_id}.zip", Body=body)
    stack.wait_for_consumers(2)

    job_id = initiate(stack, list(sources), tally=tally).json()["jobId"]
    record.jobs = 1
    wait_for(
        lambda: "bundleClaim" in job_item(dynamodb, env["JOBS_TABLE_NAME"], job_id),
        timeout=30,
        interval=0.02,
        what="a consumer claiming the bundle build",
    )
    victims = stack.consumer_pids()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    status_at_kill = job_item(dynamodb, env["JOBS_TABLE_NAME"], job_id)["status"]["S"]
    replacements = stack.wait_for_consumers(2, replacing=tuple(victims))

    final = wait_terminal(stack, [job_id], timeout=60, tally=tally)
    judge_completed(stack, tally, final, {job_id: list(sources)}, sources)
    tally.fill(record)
    record.notes.append(f"killed {len(victims)} consumers while the bundle was being built")

    assert status_at_kill == "processing", "the build finished before the kill: nothing was injected"
    assert not set(victims) & set(replacements)
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert result_keys(s3, env["S3_BUCKET_NAME"], job_id) == published_keys(stack, job_id)
