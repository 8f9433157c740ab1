"""Peak memory of the worker while it bundles a large job, to size the Lambda from a measurement.

The parent seeds sources of the requested total size into the stack's bucket;
a child process imports the app as Lambda would, builds the bundle with the
worker's own storage code, and reports its peak RSS (ru_maxrss) before and
after. Sources are incompressible random bytes, stored (not deflated) as the
worker stores them.

    python -m scripts.bench_memory CHILD <bucket> <key> <member-count> <member-bytes>
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from scripts.bench_support import Stack

MIB = 1024 * 1024
PREFIX = "downloads/bench-"  # under downloads/, where the worker may read


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB.
FULL_VCPU_MB = 1769
SIZES_MB = (256, 512, 1024, 1769)


def right_size(peak_rss_mib: float, cpu_seconds_per_gib: float, bundle_gib: float, timeout_s: int) -> dict:
    """The smallest memory size that holds the peak with room to spare (RSS <= 60 %) and builds the
    expected bundle within half the function timeout at its share of a vCPU."""
    for memory_mb in SIZES_MB:
        seconds = cpu_seconds_per_gib * bundle_gib / min(1.0, memory_mb / FULL_VCPU_MB)
        if peak_rss_mib <= 0.6 * memory_mb and seconds <= timeout_s / 2:
            return {"memory_mb": memory_mb, "predicted_bundle_seconds": round(seconds, 1)}
    return {"memory_mb": SIZES_MB[-1], "predicted_bundle_seconds": None}


def seed(stack: Stack, members: int, member_bytes: int) -> list[str]:
    s3 = stack.aws("s3", read_timeout=120)
    bucket = stack.stack_env()["S3_BUCKET_NAME"]
    block = os.urandom(member_bytes)
    keys = []
    for index in range(members):
        key = f"{PREFIX}{index:04d}.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=block[index:] + block[:index])  # distinct objects
        keys.append(key)
    return keys


def measure(stack: Stack, total_bytes: int, member_bytes: int = 16 * MIB) -> dict:
    members = max(1, total_bytes // member_bytes)
    seed(stack, members, member_bytes)
    env = {**os.environ, **stack.stack_env(), "AWS_XRAY_SDK_ENABLED": "false"}
    bucket = env["S3_BUCKET_NAME"]
    child = subprocess.run(
        [sys.executable, "-m", "scripts.bench_memory", "CHILD", bucket, "results/bench/bundle.zip"]
        + [str(members), str(member_bytes)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if child.returncode:
        raise RuntimeError(f"the bundling child failed ({child.returncode}):\n{child.stderr[-3000:]}")
    report = json.loads(child.stdout.strip().splitlines()[-1])
    return {"members": members, "member_mib": member_bytes // MIB, **report}


def _child(bucket: str, key: str, members: int, member_bytes: int) -> None:
    import app  # noqa: F401  - what a Lambda container imports before its first event
    from chalicelib.aws.clients import WORKER_CONFIG, make_clients
    from chalicelib.aws.storage import Storage

    baseline = _peak_rss_mib()
    cpu_before = _cpu_seconds()
    storage = Storage(make_clients(WORKER_CONFIG).s3, bucket)
    started = time.monotonic()
    size = storage.write_bundle(
        key, [(f"{index:04d}.bin", f"{PREFIX}{index:04d}.bin", member_bytes) for index in range(members)]
    ).size
    seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "bundle_mib": round(size / MIB, 1),
                "seconds": round(seconds, 2),
                "mib_per_s": round(size / MIB / seconds, 1),
                "rss_after_import_mib": round(baseline, 1),
                "peak_rss_mib": round(_peak_rss_mib(), 1),
                "cpu_seconds": round(_cpu_seconds() - cpu_before, 2),
            }
        )
    )


if __name__ == "__main__" and sys.argv[1:2] == ["CHILD"]:
    _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
