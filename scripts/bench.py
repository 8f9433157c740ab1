"""`make bench`: the numbers the issues ask for, each a ratio taken side by side in one run on fresh stacks.

- request path: status and initiate p50/p99 over the raw emulator calls they need (limiter on);
- job wall time over one file's delay, for 1 to 1,000 files, and on one consumer;
- a small job submitted behind a big one: its wall time over one file's delay;
- the per-job overhead: a job as wide as the consumers, fixed delay;
- AWS calls per file, counted from the workers' X-Ray segments;
- the worker's peak RSS while it bundles 1 GiB;
- a modelled cloud cost per 1,000-file job next to the sequential original;
- items and writes per partition-key value, table and each index, with 64 jobs at once.

Writes build/bench.json and build/bench-*.png. BENCH_QUICK=1 runs reduced sizes (CI).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import bench_calls, bench_cost, bench_jobs, bench_latency, bench_memory, bench_plots  # noqa: E402
from scripts.bench_coldstart import measure as cold_start_row  # noqa: E402  (issue 20, scripts/bench_coldstart.py)
from scripts.bench_partitions import measure as partitions_row  # noqa: E402  (issue 19, scripts/bench_partitions.py)
from scripts.bench_support import fresh_stack  # noqa: E402
from scripts.xray_listen import SegmentListener  # noqa: E402

BUILD = Path(__file__).resolve().parents[1] / "build"
QUICK = os.environ.get("BENCH_QUICK", "").lower() in ("1", "true", "yes")
CONSUMERS = 4
DELAY_S = 1.0  # whole seconds: a file waits as a delayed SQS message, and SQS delays by the second
SIZES = [1, 10, 100] if QUICK else [1, 10, 100, 200, 1000]  # the issue states its target at 200
BIG_JOB = 200 if QUICK else 1000
CALLS_FILES = 20  # the job whose X-Ray segments give AWS calls and worker-held time per file
LATENCY_RUNS = 100 if QUICK else 500
BUNDLE_BYTES = (64 if QUICK else 1024) * bench_memory.MIB
SAMPLE_MEAN_MIB = 1.5  # the seeded samples run from 4 KiB to 3 MiB


def _fixed_delay(seconds: float) -> dict[str, str]:
    ms = str(int(seconds * 1000))
    return {"DOWNLOAD_DELAY_MIN_MS": ms, "DOWNLOAD_DELAY_MAX_MS": ms, "LOCAL_CONSUMERS": str(CONSUMERS)}


def request_path(tmp: Path) -> tuple[dict, dict]:
    quiet = {"DOWNLOAD_DELAY_ENABLED": "false", "LOCAL_CONSUMERS": "2", "LOG_LEVEL": "WARNING"}
    limiter_on = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_MAX_REQUESTS": "100000000"}
    with fresh_stack(tmp / "latency", **quiet, **limiter_on) as stack:
        latency = bench_latency.measure(stack, LATENCY_RUNS)
        memory = bench_memory.measure(stack, BUNDLE_BYTES)
        job_item_kb = _job_item_kb(stack)
    memory["job_item_kb_1000_files"] = round(job_item_kb, 2)
    memory["right_size"] = bench_memory.right_size(
        memory["peak_rss_mib"],
        memory["cpu_seconds"] / (memory["bundle_mib"] / 1024),
        bundle_gib=1000 * SAMPLE_MEAN_MIB / 1024,
        timeout_s=bench_cost.function_timeout("process_work"),
    )
    return latency, memory


def _job_item_kb(stack) -> float:
    """The billed size of a 1,000-file job's item: what each write and status read of it costs."""
    job_id = bench_jobs.start_job(stack, bench_jobs.file_ids(1000, offset=5000))
    item = stack.aws("dynamodb").get_item(
        TableName=stack.stack_env()["JOBS_TABLE_NAME"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    )["Item"]
    return bench_cost.dynamodb_item_kb(item)


def jobs(tmp: Path) -> dict:
    listener = SegmentListener()
    listener.start()
    try:
        settings = {**_fixed_delay(DELAY_S), "RATE_LIMIT_ENABLED": "false", "AWS_XRAY_DAEMON_ADDRESS": listener.address}
        with fresh_stack(tmp / "jobs", **settings) as stack:
            calls = bench_calls.count(stack, listener, files=CALLS_FILES)
            walls = bench_jobs.wall_times(stack, SIZES, CONSUMERS, DELAY_S)
            fairness = bench_jobs.small_behind_big(stack, BIG_JOB, DELAY_S)
        # The same count at twice the delay: what a worker holds per file is its calls, not the wait.
        with fresh_stack(tmp / "calls-2s", **{**settings, **_fixed_delay(2.0)}) as stack:
            calls["at_2s_delay"] = bench_calls.count(stack, listener, files=CALLS_FILES)
    finally:
        listener.close()
    with fresh_stack(tmp / "overhead", **_fixed_delay(2.0), RATE_LIMIT_ENABLED="false") as stack:
        overhead = bench_jobs.overhead(stack, CONSUMERS, 2.0)
    one = {**_fixed_delay(2.0), "LOCAL_CONSUMERS": "1", "WORKER_CONCURRENCY": "1", "RATE_LIMIT_ENABLED": "false"}
    with fresh_stack(tmp / "one-consumer", **one) as stack:
        single = bench_jobs.one_consumer(stack, [20, 200], 2.0, targets={20: 6.0, 200: 29.0})
    return {
        "consumers": CONSUMERS,
        "delay_s": DELAY_S,
        "calls": calls,
        "wall_times": walls,
        "small_behind_big": fairness,
        "overhead": overhead,
        "one_consumer": single,
    }


def main() -> int:
    started = time.monotonic()
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        latency, memory = request_path(Path(tmp))
        job_results = jobs(Path(tmp))
    results = {
        "quick": QUICK,
        "wall_s": round(time.monotonic() - started, 1),
        "request_path": latency,
        "jobs": job_results,
        "worker_memory": memory,
    }
    results["cold_start"] = cold_start_row(QUICK)  # prints its own summary line
    results["partitions"] = partitions_row(QUICK)  # prints its own summary line
    results["cost_per_1000_file_job"] = bench_cost.remodel(results, bundle_mib=1000 * SAMPLE_MEAN_MIB)
    results["capacity_inputs"] = capacity_inputs(results)  # what `make capacity` multiplies out
    (BUILD / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    bench_plots.latency(latency, BUILD / "bench-latency-cdf.png")
    bench_plots.wall_times(job_results["wall_times"], CONSUMERS, DELAY_S, BUILD / "bench-wall-vs-files.png")
    bench_plots.fairness(job_results["small_behind_big"], BUILD / "bench-small-behind-big.png")
    print(summary(results))
    return 0


def capacity_inputs(results: dict) -> dict:
    """The measured constants of scripts/capacity.py: worker time per file, bundling CPU per GiB,
    active-jobs index writes per counted file."""
    memory = results["worker_memory"]
    return {
        "worker_seconds_per_file": results["jobs"]["calls"]["worker_held_s_per_file"],
        "bundle_cpu_seconds_per_gib": round(memory["cpu_seconds"] / (memory["bundle_mib"] / 1024), 2),
        "index_writes_per_file": results["partitions"]["index_writes_per_file"]["active-jobs"],
    }


def summary(results: dict) -> str:
    ratios = results["request_path"]["ratios"]
    jobs_ = results["jobs"]
    fair, over = jobs_["small_behind_big"], jobs_["overhead"]
    cost = results["cost_per_1000_file_job"]
    lines = [
        f"status / GetItem              p50 {ratios['status_over_get_item']['p50']}x  "
        f"p99 {ratios['status_over_get_item']['p99']}x",
        f"status (no URL) / GetItem     p50 {ratios['status_without_url_over_get_item']['p50']}x  "
        f"p99 {ratios['status_without_url_over_get_item']['p99']}x",
        f"initiate / (PutItem+Send)     p50 {ratios['initiate_over_put_and_send']['p50']}x  "
        f"p99 {ratios['initiate_over_put_and_send']['p99']}x",
        *(
            f"{row['files']:>5} files: wall {row['wall_s']:.2f} s, ideal {row['ideal_s']:.1f} s, {row['over_ideal']}x"
            for row in jobs_["wall_times"]
        ),
        f"small behind {fair['big_job_files']}-file job: {fair['small_wall_s']:.2f} s = "
        f"{fair['small_wall_over_delay']}x one file's delay, {fair['small_wall_over_alone']}x its "
        f"{fair['small_alone_wall_s']:.2f} s alone; started after {fair['small_started_s']:.2f} s "
        f"({fair['small_started_over_delay']}x one file's delay)",
        f"{over['files']} files x {over['delay_s']} s: median {over['median_s']} s (target {over['target_s']} s), "
        f"first job on a fresh stack {over['first_job_s']} s (target {over['first_job_target_s']} s)",
        *(
            f"1 consumer, {row['files']} files x 2 s: {row['wall_s']} s (target {row['target_s']} s; "
            f"sleeping {row['sleeping_s']:.0f} s)"
            for row in jobs_["one_consumer"]
        ),
        f"AWS calls per file: {jobs_['calls']['calls_per_file']} (+ SQS receive and delete, per message)",
        *(
            f"worker-held time per file at a {delay:g} s delay: {held * 1000:.1f} ms = {100 * held / delay:.1f}%"
            f" of the delay (target <= 5%)"
            for delay, held in (
                (jobs_["delay_s"], jobs_["calls"]["worker_held_s_per_file"]),
                (2.0, jobs_["calls"]["at_2s_delay"]["worker_held_s_per_file"]),
            )
        ),
        f"worker peak RSS bundling {results['worker_memory']['bundle_mib']} MiB: "
        f"{results['worker_memory']['peak_rss_mib']} MiB; right size {results['worker_memory']['right_size']}",
        f"cost per 1,000-file job: ${cost['delineate_usd']['total']} "
        f"(sequential original >= ${cost['sequential_original_usd']['total']})",
        "-> build/bench.json, build/bench-*.png",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
