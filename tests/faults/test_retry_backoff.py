"""A file whose source read fails twice and then works: the job completes within seconds,
because a failed message comes back after a short backoff (RETRY_BASE_SECONDS, doubling),
not after the queue's visibility timeout (60 s here).

The failing read is a source in the GLACIER storage class (HEAD answers, a GET
would be refused, so preparing it raises); after the second failure the test
writes it again in STANDARD, as a restore would make it readable.
"""

from __future__ import annotations

import time

from chalicelib.local.samples import sample_zip
from tests.faults.client import Tally, initiate, judge_completed, wait_for, wait_terminal

SCENARIO = "source read fails twice, then works"
VISIBILITY = 60
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "2",
    "QUEUE_VISIBILITY_TIMEOUT": str(VISIBILITY),
    "MAX_RECEIVE_COUNT": "5",
    "RETRY_BASE_SECONDS": "1",
    "RETRY_MAX_SECONDS": "10",
    "DOWNLOAD_DELAY_MIN_MS": "100",
    "DOWNLOAD_DELAY_MAX_MS": "200",
    "STALLED_JOB_SECONDS": "600",
    "SWEEP_INTERVAL_SECONDS": "600",
}
FLAKY_FILE = 83100


def failures_logged(stack) -> int:
    """Failed work messages the consumers logged (each process logs to <state dir>/logs/)."""
    logs = (stack.state_dir / "logs").glob("consumer*.log")
    return sum(path.read_text(errors="replace").count("work message failed") for path in logs)


def test_a_source_read_failing_twice_completes_the_job_within_seconds_not_the_visibility_timeout(fault_stack, record):
    stack, tally = fault_stack, Tally()
    env = stack.stack_env()
    s3 = stack.aws("s3")
    bucket, key, body = env["S3_BUCKET_NAME"], f"downloads/{FLAKY_FILE}.zip", sample_zip(70000)
    s3.put_object(Bucket=bucket, Key=key, Body=body, StorageClass="GLACIER")
    stack.wait_for_consumers(2)
    started = time.monotonic()

    job_id = initiate(stack, [FLAKY_FILE], tally=tally).json()["jobId"]
    record.jobs = 1
    wait_for(lambda: failures_logged(stack) >= 2, timeout=20, what="two failed reads")
    s3.put_object(Bucket=bucket, Key=key, Body=body)  # back in STANDARD (S3 refuses to copy from GLACIER)
    final = wait_terminal(stack, [job_id], timeout=VISIBILITY, tally=tally)
    elapsed = time.monotonic() - started

    judge_completed(stack, tally, final, {job_id: [FLAKY_FILE]}, {FLAKY_FILE: body})
    tally.fill(record)
    record.notes.append(f"completed {elapsed:.1f}s after initiate, {failures_logged(stack)} failed attempts")
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert elapsed < 15, f"took {elapsed:.1f}s: waited out the {VISIBILITY}s visibility timeout?"
