"""Load: 500 initiates from 50 concurrent client threads; no 5xx, every job terminal and exact."""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.faults.client import (
    MISSING_IDS,
    SMALL_SAMPLES,
    Tally,
    initiate,
    judge_completed,
    sample_sources,
    wait_for,
    wait_terminal,
)
from tests.support.aws import queue_depth

SCENARIO = "6 load 500 x 50 threads"
JOBS = int(os.environ.get("FAULTS_LOAD_JOBS", "500"))
CLIENTS = 50
# The embedded emulator (moto) is the bottleneck: its SQS receive scans the whole queue and each
# DynamoDB transaction deep-copies the table, so 500 jobs take minutes to process on 2 cores.
DRAIN_SECONDS = 600
STACK_SETTINGS = {
    "LOCAL_CONSUMERS": "4",
    "DOWNLOAD_DELAY_ENABLED": "false",
    "QUEUE_VISIBILITY_TIMEOUT": "30",
    "RATE_LIMIT_ENABLED": "false",
    "STALLED_JOB_SECONDS": "600",
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_500_initiates_from_50_threads_all_complete_exactly(fault_stack, record):
    stack, tally = fault_stack, Tally()
    rng = random.Random(6)
    # Mostly one available file; some with a missing one too, some with nothing available (no bundle).
    plans = [
        rng.choice([[sample], [sample], [sample], [sample, rng.choice(MISSING_IDS)], [rng.choice(MISSING_IDS)]])
        for sample in rng.choices(SMALL_SAMPLES[:5], k=JOBS)
    ]
    answers: list[tuple[int, float, str | None]] = [(0, 0.0, None)] * JOBS
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(first: int) -> None:
        with requests.Session() as session:
            start.wait()
            for index in range(first, JOBS, CLIENTS):
                began = time.monotonic()
                response = initiate(stack, plans[index], session=session)
                latency = time.monotonic() - began
                job_id = response.json().get("jobId") if response.status_code == 202 else None
                with lock:
                    tally.saw(response)
                answers[index] = (response.status_code, latency, job_id)

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    initiate_seconds = time.monotonic() - began
    jobs = {job_id: plans[index] for index, (_, _, job_id) in enumerate(answers) if job_id}
    record.jobs = len(jobs)
    latencies = [latency for _, latency, _ in answers]
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)

    # Polling 500 jobs in a loop would itself load the single-process emulator and starve the
    # consumers, so wait (cheaply) for the work queue to drain, then poll each job until terminal
    # (ten pollers), then judge every bundle byte for byte (ten downloaders).
    env = stack.stack_env()
    sqs = stack.aws("sqs")
    wait_for(
        lambda: queue_depth(sqs, env["WORK_QUEUE_URL"]) == 0,
        timeout=DRAIN_SECONDS,
        interval=1.0,
        what="the work queue to drain",
    )
    job_ids = sorted(jobs)
    chunks = [job_ids[index::10] for index in range(10)]
    with ThreadPoolExecutor(10) as pool:
        finals = list(
            pool.map(lambda chunk: wait_terminal(stack, chunk, timeout=60, tally=tally, interval=1.0), chunks)
        )
    final = {job_id: document for part in finals for job_id, document in part.items()}
    drained = time.monotonic() - began
    sources = sample_sources(SMALL_SAMPLES)
    with ThreadPoolExecutor(10) as pool:
        list(
            pool.map(
                lambda chunk: judge_completed(
                    stack, tally, {j: final[j] for j in chunk if j in final}, {j: jobs[j] for j in chunk}, sources
                ),
                chunks,
            )
        )
    tally.fill(record)
    summary = (
        f"{JOBS} initiates from {CLIENTS} threads in {initiate_seconds:.1f}s "
        f"({JOBS / initiate_seconds:.0f}/s); initiate latency p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, mean "
        f"{statistics.mean(latencies) * 1000:.0f} ms; all jobs terminal {drained:.1f}s after the first initiate"
    )
    record.notes.append(summary)
    print("\n" + summary)

    codes = sorted({code for code, _, _ in answers})
    assert codes == [202], codes
    assert len(jobs) == JOBS
    assert tally.server_errors == 0 and tally.lost == [] and tally.miscounted == []
