"""Cancellation racing completion: 50 jobs, each cancelled at a random moment of its life.

Each job ends either `cancelled` (200 to the DELETE; no progress after it, no
bundle object in S3) or `completed` (409 to the DELETE; exact bundle), never
both, never stuck.
"""

from __future__ import annotations

import random
import threading
import time

import requests

from chalicelib.models import JobStatus
from tests.faults.client import (
    SMALL_SAMPLES,
    Tally,
    initiate,
    judge_completed,
    result_keys,
    sample_sources,
    wait_for,
    wait_terminal,
)
from tests.support.aws import queue_depth

SCENARIO = "7 cancel vs completion"
JOBS = 50
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "4",
    "QUEUE_VISIBILITY_TIMEOUT": "10",
    "DOWNLOAD_DELAY_MIN_MS": "50",
    "DOWNLOAD_DELAY_MAX_MS": "300",
    "STALLED_JOB_SECONDS": "600",
}


def cancel_at_random_moments(
    stack, tally: Tally, plans: list[list[int]], waits: list[float]
) -> tuple[dict[str, list[int]], dict[str, tuple[int, dict]]]:
    """Starts every job at once and cancels each after its wait: (files per job, DELETE answer per job)."""
    outcomes: dict[str, tuple[int, dict]] = {}
    jobs: dict[str, list[int]] = {}
    lock = threading.Lock()

    def one(index: int) -> None:
        with requests.Session() as session:
            job_id = initiate(stack, plans[index], session=session, tally=tally).json()["jobId"]
            time.sleep(waits[index])  # pacing: the cancel lands at a random moment of the job's life
            response = session.delete(stack.url(f"/v1/download/{job_id}"), timeout=30)
            with lock:
                tally.saw(response)
                jobs[job_id] = plans[index]
                outcomes[job_id] = (response.status_code, response.json())

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return jobs, outcomes


def judge_cancelled(stack, tally: Tally, s3, bucket: str, job_id: str, answer: dict) -> None:
    """A 200 to the DELETE: the job stays cancelled, makes no progress after it, and has no bundle."""
    after = requests.get(stack.url(f"/v1/download/status/{job_id}"), timeout=30).json()
    if after["status"] != JobStatus.CANCELLED.value:
        tally.lost.append(f"{job_id}: cancel answered 200 but the job is {after['status']}")
    elif (after["completedFiles"], after["availableFiles"]) != (answer["completedFiles"], answer["availableFiles"]):
        tally.miscounted.append(
            f"{job_id}: progress after cancel {answer['completedFiles']} -> {after['completedFiles']}"
        )
    elif after["downloadUrl"] is not None or result_keys(s3, bucket, job_id):
        tally.miscounted.append(f"{job_id}: cancelled but a bundle exists")


def test_cancel_at_random_moments_ends_cancelled_or_completed_never_both(fault_stack, record):
    stack, tally = fault_stack, Tally()
    rng = random.Random(7)
    plans = [rng.sample(SMALL_SAMPLES, rng.randint(1, 4)) for _ in range(JOBS)]
    waits = [rng.uniform(0, 16) for _ in range(JOBS)]  # 50 jobs at once on 4 consumers take ~15 s to finish
    jobs, outcomes = cancel_at_random_moments(stack, tally, plans, waits)
    record.jobs = len(jobs)
    final = wait_terminal(stack, jobs, timeout=60, tally=tally, interval=0.5)
    env = stack.stack_env()
    sqs, s3 = stack.aws("sqs"), stack.aws("s3")
    # Whatever was in flight when a job was cancelled has been handled (and any late bundle discarded).
    wait_for(lambda: queue_depth(sqs, env["WORK_QUEUE_URL"]) == 0, timeout=60, what="the work queue to drain")

    completed = {
        job_id: plan for job_id, plan in jobs.items() if final.get(job_id, {}).get("status") == JobStatus.COMPLETED
    }
    cancelled = 0
    for job_id, (code, answer) in outcomes.items():
        document = final.get(job_id)
        if document is None:
            continue  # counted lost by wait_terminal
        if code == 200:
            cancelled += 1
            judge_cancelled(stack, tally, s3, env["S3_BUCKET_NAME"], job_id, answer)
        elif code != 409:
            tally.lost.append(f"{job_id}: DELETE answered {code}")
        elif answer.get("status") != JobStatus.COMPLETED or document["status"] != JobStatus.COMPLETED:
            tally.lost.append(f"{job_id}: 409 with {answer.get('status')}, final {document['status']}")
    judge_completed(
        stack, tally, {job_id: final[job_id] for job_id in completed}, completed, sample_sources(SMALL_SAMPLES)
    )
    tally.fill(record)
    record.notes.append(f"{cancelled} cancelled, {len(completed)} completed")

    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    assert cancelled + len(completed) == JOBS
    assert cancelled and completed, "the race needs both outcomes to mean anything"
