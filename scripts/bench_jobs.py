"""Job wall times: against one file's delay (files wait side by side, holding no worker), the same
on one consumer, a small job behind a big one, and the per-job overhead."""

from __future__ import annotations

import math
import threading
import time

import requests

from chalicelib.polling import wait_until
from scripts.bench_support import Stack, wait_terminal
from tests.support.aws import queue_depth


def start_job(stack: Stack, file_ids: list[int]) -> str:
    response = requests.post(stack.url("/v1/download/initiate"), json={"file_ids": file_ids}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def file_ids(count: int, offset: int = 0) -> list[int]:
    """Ids from 70000 up: the seeded samples among them are bundled, the rest are unavailable."""
    return list(range(70000 + offset, 70000 + offset + count))


def wall_times(stack: Stack, sizes: list[int], consumers: int, delay_s: float) -> list[dict]:
    """One job at a time on a quiet stack, each over its ideal: one delay, since files wait side by
    side (`sleeping_ideal_s`: ceil(N / consumers) x delay, the best a worker sleeping each file did)."""
    rows = []
    for size in sizes:
        started = time.monotonic()
        document = wait_terminal(stack, start_job(stack, file_ids(size)), timeout=60 + 3 * size * delay_s)
        wall = time.monotonic() - started
        assert document["status"] == "completed" and document["completedFiles"] == size, document
        rows.append(
            {
                "files": size,
                "wall_s": round(wall, 3),
                "ideal_s": delay_s,
                "over_ideal": round(wall / delay_s, 3),
                "sleeping_ideal_s": math.ceil(size / consumers) * delay_s,
            }
        )
    return rows


def one_consumer(stack: Stack, sizes: list[int], delay_s: float, targets: dict[int, float]) -> list[dict]:
    """LOCAL_CONSUMERS=1: a sleeping worker took N x delay; a waiting file holds nothing."""
    rows = []
    for size in sizes:
        started = time.monotonic()
        document = wait_terminal(stack, start_job(stack, file_ids(size)), timeout=60 + 3 * size * delay_s)
        assert document["status"] == "completed", document
        wall = time.monotonic() - started
        rows.append({"files": size, "wall_s": round(wall, 3), "target_s": targets[size], "sleeping_s": size * delay_s})
    return rows


class ProgressRecorder(threading.Thread):
    """Samples each job every 100 ms: completed files for the timeline plot, and when it left `queued`."""

    def __init__(self, stack: Stack, jobs: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.stack, self.jobs = stack, jobs
        self.started = time.monotonic()
        self.points: dict[str, list[tuple[float, int]]] = {name: [] for name in jobs}
        self.left_queue: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        with requests.Session() as http:
            while not self.done.wait(0.1):
                for name, job_id in self.jobs.items():
                    document = http.get(self.stack.url(f"/v1/download/status/{job_id}"), timeout=10).json()
                    moment = round(time.monotonic() - self.started, 2)
                    self.points[name].append((moment, document["completedFiles"]))
                    if document["status"] != "queued":
                        self.left_queue.setdefault(name, moment)


def _timed_job(stack: Stack, files: list[int]) -> float:
    started = time.monotonic()
    document = wait_terminal(stack, start_job(stack, files), timeout=600)
    assert document["status"] == "completed", document
    return time.monotonic() - started


def small_behind_big(stack: Stack, big_files: int, delay_s: float) -> dict:
    """A 2-file job submitted one second after a big one: when it started and its wall time, over
    one file's delay, and its wall time over the same job's on the stack once the big one is gone."""
    big = start_job(stack, file_ids(big_files, offset=1000))
    submitted_big = time.monotonic()
    time.sleep(1.0)  # the scenario itself, not a synchronisation: the small job arrives a second later
    started = time.monotonic()
    small = start_job(stack, file_ids(2))
    recorder = ProgressRecorder(stack, {"big": big, "small": small})
    recorder.started = submitted_big
    recorder.start()
    document = wait_terminal(stack, small, timeout=600)
    wall = time.monotonic() - started
    recorder.done.set()
    recorder.join(timeout=5)
    assert document["status"] == "completed", document
    requests.delete(stack.url(f"/v1/download/{big}"), timeout=10)
    sqs, work_queue = stack.aws("sqs"), stack.stack_env()["WORK_QUEUE_URL"]
    wait_until(lambda: queue_depth(sqs, work_queue) == 0, timeout=60, what="the cancelled job's last files")
    alone = sorted(_timed_job(stack, file_ids(2)) for _ in range(3))[1]
    start_delay = recorder.left_queue["small"] - (started - submitted_big)
    return {
        "big_job_files": big_files,
        "small_job_files": 2,
        "delay_s": delay_s,
        "small_wall_s": round(wall, 3),
        "small_wall_over_delay": round(wall / delay_s, 2),
        "small_started_s": round(start_delay, 2),
        "small_started_over_delay": round(start_delay / delay_s, 2),
        "small_alone_wall_s": round(alone, 3),
        "small_wall_over_alone": round(wall / alone, 2),
        "timeline": recorder.points,
    }


def overhead(stack: Stack, files: int, delay_s: float) -> dict:
    """A job as wide as the consumers with a fixed delay: what the hops add to one file's time.
    Run on a freshly started stack, so the first run is the first job it serves."""
    runs = []
    for _ in range(3):
        started = time.monotonic()
        wait_terminal(stack, start_job(stack, file_ids(files)), timeout=120)
        runs.append(time.monotonic() - started)
    return {
        "files": files,
        "delay_s": delay_s,
        "runs_s": [round(r, 3) for r in runs],
        "median_s": round(sorted(runs)[1], 3),
        "target_s": round(1.2 * delay_s, 3),
        "first_job_s": round(runs[0], 3),
        "first_job_target_s": round(1.3 * delay_s, 3),
    }
