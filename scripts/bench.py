"""`make bench`: the numbers the issues ask for, measured against a fresh dev stack.

1. Wall time of a 12-file job with 4 consumers and 2-3 s per file
   (ideal: 3 s x ceil(12/4) = 9 s; the predecessor summed its files).
2. Initiate latency for 1-file and 1,000-file jobs (must not grow with size).
3. Status poll latency.
Results print as a table and are written to build/bench.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.devstack import poll_until_terminal, start_dev_stack  # noqa: E402

SAMPLES = list(range(70000, 70100, 7))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def job_wall_time(stack, file_ids: list[int]) -> tuple[float, dict]:
    started = time.monotonic()
    job_id = requests.post(stack.url("/v1/download/initiate"), json={"file_ids": file_ids}, timeout=10).json()["jobId"]
    document, _ = poll_until_terminal(stack, job_id, timeout=300, interval=0.05)
    return time.monotonic() - started, document


def latencies(stack, method: str, path: str, runs: int, **kwargs) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.monotonic()
        response = requests.request(method, stack.url(path), timeout=30, **kwargs)
        samples.append((time.monotonic() - started) * 1000)
        assert response.status_code < 300, response.text
    return samples


def main() -> None:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_dev_stack(
            Path(tmp),
            DOWNLOAD_DELAY_MIN_MS="2000",
            DOWNLOAD_DELAY_MAX_MS="3000",
            LOCAL_CONSUMERS="4",
            RATE_LIMIT_ENABLED="false",
        )
        try:
            walls = []
            for _ in range(3):
                wall, document = job_wall_time(stack, SAMPLES[:12])
                assert document["status"] == "completed" and document["completedFiles"] == 12, document
                walls.append(wall)
            results["job_12_files_4_consumers_2_3s"] = {
                "runs_s": [round(w, 2) for w in walls],
                "median_s": round(statistics.median(walls), 2),
                "ideal_s": 9.0,
                "sequential_s": "24-36",
            }
            job_id = requests.post(stack.url("/v1/download/initiate"), json={"file_ids": [70000]}, timeout=10).json()[
                "jobId"
            ]
            samples = latencies(stack, "GET", f"/v1/download/status/{job_id}", 100)
            results["status_ms"] = {"p50": round(percentile(samples, 50), 1), "p99": round(percentile(samples, 99), 1)}
            for size in (1, 1000):
                body = {"file_ids": list(range(10000, 10000 + size))}
                # (the 1,000-file jobs then flood the queue: measure them last)
                samples = latencies(stack, "POST", "/v1/download/initiate", 30, json=body)
                results[f"initiate_{size}_files_ms"] = {
                    "p50": round(percentile(samples, 50), 1),
                    "p99": round(percentile(samples, 99), 1),
                }
        finally:
            stack.stop()
    Path("build").mkdir(exist_ok=True)
    Path("build/bench.json").write_text(json.dumps(results, indent=2))
    for name, value in results.items():
        print(f"{name:34} {json.dumps(value)}")


if __name__ == "__main__":
    main()
