"""Request-path latency against its floor: each API call next to the raw emulator calls it needs.

Samples are interleaved (raw, API, raw, API, ...) so both see the same
background load, and the ratio of their percentiles is what we report:
status over one GetItem, initiate over PutItem + SendMessage. The order
within each round rotates: a call made right after another pays for the
emulator's work after that one's response (its request log line, the
closed connection), so a fixed order would tax one side every time.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable

import requests

from scripts.bench_support import Stack, percentile, wait_terminal


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _summary(samples: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(samples, 50), 2),
        "p99_ms": round(percentile(samples, 99), 2),
        "samples_ms": [round(s, 3) for s in samples],
    }


def _ratio(api: dict, floor: dict) -> dict:
    return {
        "p50": round(api["p50_ms"] / floor["p50_ms"], 2),
        "p99": round(api["p99_ms"] / floor["p99_ms"], 2),
    }


def _rotating(runs: int, calls: list[tuple[Callable[[], object], list[float]]]) -> None:
    """`runs` rounds of every call, each round starting one call further along."""
    for round_ in range(runs):
        for index in range(len(calls)):
            call, samples = calls[(round_ + index) % len(calls)]
            samples.append(_timed(call))


def measure(stack: Stack, runs: int) -> dict:
    """Status (of a job whose document carries a URL, and of one without) and initiate, limiter on, against
    GetItem and PutItem + SendMessage."""
    env = stack.stack_env()
    dynamodb, sqs = stack.aws("dynamodb"), stack.aws("sqs")
    table, dlq = env["JOBS_TABLE_NAME"], env["DEAD_LETTER_QUEUE_URL"]
    http = requests.Session()
    job_id = http.post(stack.url("/v1/download/initiate"), json={"file_ids": [70000]}, timeout=10).json()["jobId"]
    wait_terminal(stack, job_id)
    # A job with nothing to bundle: its status carries no URL to sign, as a running job's does not.
    plain_id = http.post(stack.url("/v1/download/initiate"), json={"file_ids": [10001]}, timeout=10).json()["jobId"]
    wait_terminal(stack, plain_id)
    job_key = {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    status_path = stack.url(f"/v1/download/status/{job_id}")
    plain_path = stack.url(f"/v1/download/status/{plain_id}")

    def get_item() -> None:
        dynamodb.get_item(TableName=table, Key=job_key, ConsistentRead=True)

    def status() -> None:
        assert http.get(status_path, timeout=10).status_code == 200

    def status_without_url() -> None:
        assert http.get(plain_path, timeout=10).status_code == 200

    def put_and_send() -> None:
        scratch = f"BENCH#{uuid.uuid4()}"
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": scratch}, "sk": {"S": "JOB"}, "ttl": {"N": str(int(time.time()) + 600)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        sqs.send_message(QueueUrl=dlq, MessageBody='{"bench":true}')  # never consumed

    def initiate() -> None:
        response = http.post(stack.url("/v1/download/initiate"), json={"file_ids": [70000]}, timeout=10)
        assert response.status_code == 202, response.text

    for _ in range(10):  # warm connections and caches on both sides
        get_item(), status(), status_without_url(), put_and_send(), initiate()
    raw_get, api_status, api_plain, raw_put_send, api_initiate = [], [], [], [], []
    _rotating(runs, [(get_item, raw_get), (status, api_status), (status_without_url, api_plain)])
    _rotating(runs, [(put_and_send, raw_put_send), (initiate, api_initiate)])
    sqs.purge_queue(QueueUrl=dlq)
    floors = {"get_item": _summary(raw_get), "put_item_plus_send_message": _summary(raw_put_send)}
    api = {
        "status": _summary(api_status),
        "status_without_url": _summary(api_plain),
        "initiate": _summary(api_initiate),
    }
    return {
        "runs": runs,
        "floors": floors,
        "api": api,
        "ratios": {
            "status_over_get_item": _ratio(api["status"], floors["get_item"]),
            "status_without_url_over_get_item": _ratio(api["status_without_url"], floors["get_item"]),
            "initiate_over_put_and_send": _ratio(api["initiate"], floors["put_item_plus_send_message"]),
        },
    }
