"""AWS calls per file, counted from the X-Ray segments the workers emit (as the daemon would get them).

Each work message is one segment (`delineate-file`, `delineate-bundle`, ...)
whose subsegments are the boto3 calls it made; the SQS receive and delete
belong to the event source mapping in the cloud, not to the handler, so they
are not in these segments and are reported separately (2 per message).
"""

from __future__ import annotations

from collections import Counter

from chalicelib.polling import wait_until
from scripts.bench_jobs import file_ids, start_job
from scripts.bench_support import Stack, wait_terminal
from scripts.xray_listen import SegmentListener

RECEIVE_AND_DELETE = 2


def _operations(entity: dict) -> list[str]:
    aws = entity.get("aws") or {}
    found = [f"{entity['name']} {aws['operation']}"] if "operation" in aws else []
    return found + [op for sub in entity.get("subsegments", []) for op in _operations(sub)]


def _job_segments(listener: SegmentListener, job_id: str) -> list[dict]:
    return [
        d
        for d in list(listener.documents)
        if d.get("type") != "subsegment" and (d.get("annotations") or {}).get("jobId") == job_id
    ]


def count(stack: Stack, listener: SegmentListener, files: int, rounds: int = 3) -> dict:
    """`rounds` jobs one after another: calls from the last, held time the median of the rounds
    (one job's mean moved 2x between runs on a quiet machine, with the emulator's own hiccups)."""
    measured = [_one_job(stack, listener, files) for _ in range(rounds)]
    held = sorted(round_["worker_held_s_per_file"] for round_ in measured)
    return {**measured[-1], "worker_held_s_per_file": held[len(held) // 2], "worker_held_s_per_file_rounds": held}


def _one_job(stack: Stack, listener: SegmentListener, files: int) -> dict:
    job_id = start_job(stack, file_ids(files))
    wait_terminal(stack, job_id, timeout=300)

    def every_step_reported() -> list[dict] | None:
        segments = _job_segments(listener, job_id)
        file_segments = [s for s in segments if s["name"] == "delineate-file"]
        bundled = any(s["name"] == "delineate-bundle" for s in segments)
        return segments if bundled and len(file_segments) >= files else None

    segments = wait_until(every_step_reported, timeout=30, interval=0.1, what=f"the segments of job {job_id}")
    by_kind: dict[str, Counter] = {}
    messages: Counter = Counter()
    for segment in segments:
        kind = segment["name"].removeprefix("delineate-")
        messages[kind] += 1
        by_kind.setdefault(kind, Counter()).update(_operations(segment))
    file_calls = sum(by_kind.get("file", Counter()).values())
    file_seconds = [s["end_time"] - s["start_time"] for s in segments if s["name"] == "delineate-file"]
    return {
        "files": files,
        "messages": dict(messages),
        "calls_by_kind": {kind: dict(counter) for kind, counter in by_kind.items()},
        "calls_per_file": round(file_calls / files, 2),
        # A file is two messages now (start, then due): what the worker holds per file is both.
        "worker_held_s_per_file": round(sum(file_seconds) / files, 4),
        "calls_per_job_besides_files": sum(sum(c.values()) for k, c in by_kind.items() if k != "file"),
        "sqs_receive_delete_per_message": RECEIVE_AND_DELETE,
    }
