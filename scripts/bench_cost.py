"""A modelled cloud bill for one 1,000-file job, from counted calls, measured durations and configured memory.

Only what the job causes is counted (no free tier, no storage-at-rest, no
data transfer out to the client, which is the same for any design). The
original service is modelled as one blocking request per file: an API
Gateway request and a Lambda invocation held for the whole preparation time.
It could not actually run behind API Gateway (29 s cut-off) — which is the
point of this service — so that row is a lower bound on what it would cost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# us-east-1 list prices (USD) as published by AWS in 2025, after the November 2024
# DynamoDB on-demand price cut; x86 Lambda. Check them before relying on the totals.
PRICES_AS_OF = "2025 (us-east-1 list prices)"
PRICES = {
    "lambda_gb_second": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "api_gateway_rest_request": 3.50 / 1e6,
    "sqs_request": 0.40 / 1e6,  # per 64 KB chunk; every message here is one chunk
    "dynamodb_write_request_unit": 0.625 / 1e6,
    "dynamodb_read_request_unit": 0.125 / 1e6,
    "s3_get_or_head": 0.0004 / 1000,
    "s3_put_or_list": 0.005 / 1000,
}
CLOUD_MEAN_DELAY_S = (10 + 200) / 2  # DOWNLOAD_DELAY_* in the cloud stage: 10-200 s per file
CLOUD_MAX_DELAY_S = 200  # a 1,000-file job ends about when its slowest file comes due
MESSAGES_PER_FILE = 2  # a start message and its delayed due message (worker/processing.py)
CLOUD_WORKERS = 50  # WorkerMaximumConcurrency's default
STATUS_POLL_S = 2  # STATUS_RETRY_AFTER_SECONDS: what a polling client waits between polls
API_REQUEST_S = 0.05  # an API invocation (status or initiate), generously
ROOT = Path(__file__).resolve().parents[1]


def _function_config(function: str) -> dict:
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    return stage["lambda_functions"][function]


def _memory_gb(function: str) -> float:
    return _function_config(function)["lambda_memory_size"] / 1024


def function_timeout(function: str) -> int:
    return int(_function_config(function)["lambda_timeout"])


def _dynamodb_units(operation: str, job_item_kb: float) -> tuple[float, float]:
    """(write units, read units) of one call on the job item (and a small file item) in the file step."""
    writes_on_job = math.ceil(job_item_kb)
    if operation == "PutItem":  # the file's wait item (jobs/waits.py), well under 1 KB
        return 1.0, 0.0
    if operation == "TransactWriteItems":  # file item (< 1 KB) + job item, transactional: twice the units
        return 2 * (1 + writes_on_job), 0.0
    if operation == "UpdateItem":
        return float(writes_on_job), 0.0
    if operation == "GetItem":  # strongly consistent
        return 0.0, float(math.ceil(job_item_kb / 4))
    if operation == "Query":
        return 0.0, 1.0
    return 0.0, 0.0


def _file_step_cost(file_calls: dict[str, float], job_item_kb: float, held_s: float) -> dict:
    """Per file: its two messages (received, deleted; sends are counted among its calls), its AWS
    calls, and the worker's time: what it holds, never the file's delay (a delayed message waits)."""
    cost = {"sqs": 2 * MESSAGES_PER_FILE * PRICES["sqs_request"], "dynamodb": 0.0, "s3": 0.0}
    for call, per_file in file_calls.items():
        service, _, operation = call.partition(" ")
        service = service.lower()  # X-Ray names the service in lower case
        if service == "dynamodb":
            writes, reads = _dynamodb_units(operation, job_item_kb)
            cost["dynamodb"] += per_file * (
                writes * PRICES["dynamodb_write_request_unit"] + reads * PRICES["dynamodb_read_request_unit"]
            )
        elif service == "s3":
            cost["s3"] += per_file * PRICES["s3_get_or_head"]
        elif service == "sqs":
            cost["sqs"] += per_file * PRICES["sqs_request"]
    cost["lambda"] = (
        held_s * _memory_gb("process_work") * PRICES["lambda_gb_second"] + MESSAGES_PER_FILE * PRICES["lambda_request"]
    )
    return cost


def model(
    files: int,
    file_calls: dict[str, float],
    job_item_kb: float,
    held_s: float,
    bundle_mib: float,
    bundle_mib_per_s: float,
) -> dict:
    per_file = _file_step_cost(file_calls, job_item_kb, held_s)
    wall_s = math.ceil(CLOUD_MAX_DELAY_S + files * held_s / CLOUD_WORKERS)
    polls = math.ceil(wall_s / STATUS_POLL_S) + 1
    api = (polls + 1) * (
        PRICES["api_gateway_rest_request"]
        + PRICES["lambda_request"]
        + API_REQUEST_S * _memory_gb("api_handler") * PRICES["lambda_gb_second"]
    )
    bundle_s = bundle_mib / bundle_mib_per_s
    parts = math.ceil(bundle_mib / 8) + 2  # 8 MiB parts, plus create and complete
    bundle = (
        bundle_s * _memory_gb("process_work") * PRICES["lambda_gb_second"]
        + files * PRICES["s3_get_or_head"]
        + parts * PRICES["s3_put_or_list"]
    )
    ours = {name: round(value * files, 6) for name, value in per_file.items()}
    ours.update(api=round(api, 6), bundle=round(bundle, 6))
    original_per_file = (
        PRICES["api_gateway_rest_request"]
        + PRICES["lambda_request"]
        + CLOUD_MEAN_DELAY_S * _memory_gb("api_handler") * PRICES["lambda_gb_second"]
        + PRICES["s3_get_or_head"]
    )
    return {
        "prices_as_of": PRICES_AS_OF,
        "assumptions": {
            "files": files,
            "mean_delay_s": CLOUD_MEAN_DELAY_S,
            "workers": CLOUD_WORKERS,
            "job_wall_s": wall_s,
            "status_polls": polls,
            "worker_memory_gb": _memory_gb("process_work"),
            "job_item_kb": round(job_item_kb, 2),
            "worker_held_s_per_file": round(held_s, 3),
            "bundle_mib": bundle_mib,
        },
        "delineate_usd": {"by_part": ours, "total": round(sum(ours.values()), 4)},
        "sequential_original_usd": {
            "total": round(original_per_file * files, 4),
            "client_wall_s": files * CLOUD_MEAN_DELAY_S,
        },
    }


def dynamodb_item_kb(item: dict) -> float:
    """An item's billed size (low-level attribute values), by DynamoDB's published sizing rules."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items()) / 1024


def _value_bytes(value: dict) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return math.ceil(len(inner.lstrip("-").replace(".", "").lstrip("0") or "0") / 2) + 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_bytes(element) for name, element in inner.items())
    if kind == "B":
        return len(inner)
    if kind in ("SS", "NS"):
        return sum(_value_bytes({kind[0]: element}) for element in inner)
    return 1  # BOOL, NULL


def remodel(results: dict, bundle_mib: float | None = None) -> dict:
    """The model evaluated on a run's measurements with the current configuration: by `make bench`
    itself, and again on a finished run after right-sizing memory from it (`python -m scripts.bench_cost
    build/bench.json`), so the numbers stay the run's own."""
    calls, memory = results["jobs"]["calls"], results["worker_memory"]
    return model(
        files=1000,
        file_calls={call: n / calls["files"] for call, n in calls["calls_by_kind"].get("file", {}).items()},
        job_item_kb=memory["job_item_kb_1000_files"],
        held_s=calls["worker_held_s_per_file"],
        bundle_mib=bundle_mib or results["cost_per_1000_file_job"]["assumptions"]["bundle_mib"],
        bundle_mib_per_s=memory["mib_per_s"],
    )


if __name__ == "__main__":
    import sys

    print(json.dumps(remodel(json.loads(Path(sys.argv[1]).read_text())), indent=2))
