"""The capacity model: what the packaged stack can carry, which ceiling binds first, and what raises it.

    make capacity                                  the default profile (10,000 users x one 1,000-file job a day, 5x peaks)
    make capacity ARGS="--users 100000"            another profile
    python scripts/capacity.py --markdown          the table the docs show

Inputs, each from the one place that sets it:
- the packaged template's parameter defaults (build/prod/sam.yaml, `make package`);
- the prod stage's settings (.chalice/config.json);
- the bench's measured work per file and per GiB of bundle (build/bench.json, `make bench`),
  falling back to the figures below where no bench has run;
- AWS's published quotas (QUOTAS, each with its source).

Every ceiling is a rate or a count the profile's peak must stay under. The model is
deliberately simple (Little's law, even spread over shards); the bench measures the
constants, the model multiplies them out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.package import deep_merge, load_cfn_yaml  # noqa: E402

DAY = 86_400
LAMBDA_MB_PER_VCPU = 1769  # Lambda: "at 1,769 MB, a function has the equivalent of one vCPU"
GIB = 1024**3

# Published AWS quotas (defaults per account and region unless said), as of 2025.
QUOTAS = {
    # Lambda: "Concurrent executions" 1,000 default (Service Quotas, adjustable); 100 always stay unreserved.
    "lambda_concurrency": 1000,
    "lambda_unreserved_floor": 100,
    # SQS event source: ScalingConfig.MaximumConcurrency is 2-1,000 (Lambda developer guide, "Configuring maximum
    # concurrency for Amazon SQS event sources").
    "sqs_mapping_max_concurrency": 1000,
    # SQS standard queue: about 120,000 in-flight messages (received, not deleted); delayed messages are not in
    # flight and a standard queue's backlog is unbounded (SQS developer guide, "Amazon SQS message quotas").
    "sqs_in_flight": 120_000,
    # DynamoDB: 1,000 write units/s and 3,000 read units/s per partition, for a table and each GSI
    # ("Best practices for designing and using partition keys effectively").
    "dynamodb_partition_wcu": 1000,
    # DynamoDB on demand: 40,000 write units/s per table (adjustable); a new on-demand table serves 4,000 writes/s
    # at once and doubles its previous peak within 30 minutes ("On-demand capacity mode", "Warm throughput").
    "dynamodb_table_wcu": 40_000,
    "dynamodb_new_table_wcu": 4000,
    # API Gateway: 10,000 requests/s account-level throttle per region, 5,000 burst (adjustable).
    "apigw_account_rps": 10_000,
    # S3 multipart upload: at most 10,000 parts; one object at most 5 TiB.
    "s3_max_parts": 10_000,
    "s3_max_object": 5 * 1024**4,
}

# Where no bench has run: `make bench` at fb78849 (2026-12-06, 2-core machine, moto as the emulator, which
# answers slower than DynamoDB and SQS in a region, so these are conservative for the cloud).
FALLBACK_MEASURES = {
    "worker_seconds_per_file": 0.0585,  # worker-held time per file, both its messages, X-Ray on
    # CPU seconds to zip and upload one GiB on one vCPU (3.7 CPU-s for 1 GiB); Lambda gives a function CPU
    # in proportion to its memory, one vCPU at 1,769 MB, so at 512 MB this is about 13 s/GiB.
    "bundle_cpu_seconds_per_gib": 3.7,
    "index_writes_per_file": 1.47,  # active-jobs index writes per counted file (bench_partitions; at most 2)
    # write units on the table per file: its WAIT item (1), then file item + job item in one transaction (2 x 2)
    "table_writes_per_file": 5.0,
    "api_request_seconds": 0.05,  # one status or initiate invocation, generously
}


@dataclass(frozen=True)
class Profile:
    users: int = 10_000
    jobs_per_user_day: float = 1.0
    files_per_job: int = 1000
    peak_factor: float = 5.0
    mean_file_bytes: int = 4 * 1024**2  # the sample sources' mean size is a few MiB
    webhook_share: float = 0.0  # clients that wait for a webhook instead of polling

    @property
    def jobs_per_second(self) -> float:
        return self.users * self.jobs_per_user_day / DAY * self.peak_factor

    @property
    def files_per_second(self) -> float:
        return self.jobs_per_second * self.files_per_job


@dataclass(frozen=True)
class Stack:
    """The deployment as packaged: parameter defaults and the prod stage's settings."""

    worker_concurrency: int
    api_concurrency: int
    sweeper_concurrency: int
    api_rate: float
    delay_min_s: float
    delay_max_s: float
    status_retry_after_s: float
    long_poll_s: float
    bundle_max_bytes: int
    worker_timeout_s: float
    bundle_memory_mb: int
    active_shards: int
    measures: dict[str, float] = field(default_factory=dict)
    quotas: dict[str, float] = field(default_factory=lambda: dict(QUOTAS))

    @property
    def job_seconds(self) -> float:
        """A job lasts about its slowest file: files wait in parallel, nobody holds a worker while they wait."""
        return self.delay_max_s + self.measures["worker_seconds_per_file"]


@dataclass(frozen=True)
class Ceiling:
    name: str
    limit: float
    need: float
    unit: str
    raise_with: str

    @property
    def headroom(self) -> float:
        return math.inf if self.need == 0 else self.limit / self.need


def _defaults(template: dict) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}


def infra_template() -> dict:
    """infra/'s two files merged as `make package` merges them (Chalice adds no parameters)."""
    return deep_merge(
        load_cfn_yaml(ROOT / "infra" / "template.yaml"), load_cfn_yaml(ROOT / "infra" / "chalice-overrides.yaml")
    )


def load_stack(template_path: Path | None, chalice_config: Path, bench_path: Path | None) -> Stack:
    params = _defaults(load_cfn_yaml(template_path) if template_path else infra_template())
    stage = json.loads(chalice_config.read_text())["stages"]["prod"]
    env = stage["environment_variables"]
    functions = stage["lambda_functions"]
    worker = functions["process_work"]
    bundler = functions.get("build_bundles", worker)  # the function that builds bundles, where it has its own
    measures = dict(FALLBACK_MEASURES)
    if bench_path is not None and bench_path.exists():
        measures.update(json.loads(bench_path.read_text()).get("capacity_inputs", {}))
    from chalicelib.jobs import items

    return Stack(
        worker_concurrency=int(params["WorkerMaximumConcurrency"]),
        api_concurrency=int(params["ApiReservedConcurrency"]),
        sweeper_concurrency=int(params["SweeperReservedConcurrency"]),
        api_rate=float(params["ApiThrottlingRateLimit"]),
        delay_min_s=int(env["DOWNLOAD_DELAY_MIN_MS"]) / 1000,
        delay_max_s=int(env["DOWNLOAD_DELAY_MAX_MS"]) / 1000,
        status_retry_after_s=float(env["STATUS_RETRY_AFTER_SECONDS"]),
        long_poll_s=float(env.get("LONG_POLL_MAX_SECONDS", 20)),
        bundle_max_bytes=int(env.get("BUNDLE_MAX_BYTES", 4 * GIB)),
        worker_timeout_s=float(bundler["lambda_timeout"]),
        bundle_memory_mb=int(bundler["lambda_memory_size"]),
        active_shards=int(getattr(items, "ACTIVE_SHARDS", 1)),
        measures=measures,
    )


def ceilings(profile: Profile, stack: Stack) -> list[Ceiling]:
    m, q = stack.measures, stack.quotas
    files = profile.files_per_second
    active_jobs = profile.jobs_per_second * stack.job_seconds  # Little's law
    pollers = active_jobs * (1 - profile.webhook_share)
    poll_cycle = stack.long_poll_s + stack.status_retry_after_s
    api_rps = pollers / poll_cycle + profile.jobs_per_second
    api_held = api_rps * m["api_request_seconds"] + pollers * stack.long_poll_s / poll_cycle
    reserved = stack.worker_concurrency + stack.api_concurrency + stack.sweeper_concurrency
    bundle_gib = min(stack.bundle_max_bytes, profile.files_per_job * profile.mean_file_bytes) / GIB
    seconds_per_gib = m["bundle_cpu_seconds_per_gib"] * LAMBDA_MB_PER_VCPU / min(stack.bundle_memory_mb, 10240)
    # aws/bundles.part_size_for grows the part with the volume (up to S3's 5 GiB part), so the
    # 10,000-part limit never binds before S3's largest object does.
    largest = min(5 * GIB * q["s3_max_parts"], q["s3_max_object"])
    return [
        Ceiling(
            "worker files/s",
            stack.worker_concurrency / m["worker_seconds_per_file"],
            files,
            "files/s",
            f"WorkerMaximumConcurrency (<= {q['sqs_mapping_max_concurrency']}); account Lambda concurrency",
        ),
        Ceiling(
            "active-jobs index, hottest partition",
            q["dynamodb_partition_wcu"],
            files * m["index_writes_per_file"] / stack.active_shards,
            "writes/s",
            "nothing up to 10x: ACTIVE_SHARDS (chalicelib/jobs/items.py) spreads the index for that",
        ),
        Ceiling(
            "jobs table, hottest job item",
            q["dynamodb_partition_wcu"],
            profile.files_per_job * m["table_writes_per_file"] / max(stack.delay_max_s - stack.delay_min_s, 1),
            "writes/s",
            "nothing: one job's files spread over its delays",
        ),
        Ceiling(
            "jobs table, on-demand at once",
            q["dynamodb_new_table_wcu"],
            files * m["table_writes_per_file"],
            "writes/s",
            f"table warm throughput (up to {q['dynamodb_table_wcu']:,} writes/s per table, adjustable)",
        ),
        Ceiling(
            "API requests/s (stage throttle)",
            stack.api_rate,
            api_rps,
            "requests/s",
            f"ApiThrottlingRateLimit (account: {q['apigw_account_rps']:,}/s per region)",
        ),
        Ceiling(
            "API concurrency (incl. held long-polls)",
            stack.api_concurrency,
            api_held,
            "invocations",
            "ApiReservedConcurrency, or a smaller LONG_POLL_MAX_SECONDS",
        ),
        Ceiling(
            "SQS messages in flight",
            q["sqs_in_flight"],
            stack.worker_concurrency,
            "messages",
            "nothing: waiting files are delayed messages, not in flight",
        ),
        Ceiling(
            "account Lambda concurrency",
            q["lambda_concurrency"] - q["lambda_unreserved_floor"],
            reserved,
            "reserved",
            "the account's concurrent-executions quota (Service Quotas)",
        ),
        Ceiling(
            "bundle build time, one volume",
            stack.worker_timeout_s / 2,
            bundle_gib * seconds_per_gib,
            "s (2x headroom)",
            "the bundling function's memory (CPU grows with it) or a smaller BUNDLE_MAX_BYTES",
        ),
        Ceiling(
            "largest volume (parts x part size)",
            min(largest, q["s3_max_object"]) / GIB,
            bundle_gib,
            "GiB",
            "nothing: part size grows with the volume",
        ),
    ]


def binding(rows: list[Ceiling]) -> Ceiling:
    return min(rows, key=lambda row: row.headroom)


def render(profile: Profile, rows: list[Ceiling], markdown: bool = False) -> str:
    head = (
        f"profile: {profile.users:,} users x {profile.jobs_per_user_day:g} job/day x {profile.files_per_job:,} files, "
        f"{profile.peak_factor:g}x peaks: {profile.files_per_second:,.0f} files/s, "
        f"{profile.jobs_per_second:.2f} jobs/s at peak"
    )
    lines = [head, ""]
    if markdown:
        lines += ["| ceiling | limit | peak need | headroom | raised by |", "| --- | ---: | ---: | ---: | --- |"]
    for row in rows:
        cells = (row.name, f"{row.limit:,.0f} {row.unit}", f"{row.need:,.1f}", f"{row.headroom:,.1f}x", row.raise_with)
        lines.append("| " + " | ".join(cells) + " |" if markdown else "  ".join(cells))
    first = binding(rows)
    verdict = "fits" if first.headroom >= 1 else "DOES NOT FIT"
    lines += ["", f"{verdict}: the first ceiling to bind is '{first.name}' ({first.headroom:.1f}x): {first.raise_with}"]
    return "\n".join(lines)


def plan_for(profile: Profile, stack: Stack) -> tuple[Stack, list[str]]:
    """The parameter values (and the quotas they need) that make every ceiling fit `profile` with 1.2x headroom."""
    m = stack.measures
    workers = math.ceil(profile.files_per_second * m["worker_seconds_per_file"] * 1.2)
    rows = {row.name: row for row in ceilings(profile, stack)}
    api_rps = rows["API requests/s (stage throttle)"].need
    api_conc = rows["API concurrency (incl. held long-polls)"].need
    planned = replace(
        stack,
        worker_concurrency=max(stack.worker_concurrency, workers),
        api_rate=max(stack.api_rate, math.ceil(api_rps * 1.2)),
        api_concurrency=max(stack.api_concurrency, math.ceil(api_conc * 1.2)),
    )
    changes = []
    for name, before, after in (
        ("WorkerMaximumConcurrency", stack.worker_concurrency, planned.worker_concurrency),
        ("ApiThrottlingRateLimit", stack.api_rate, planned.api_rate),
        ("ApiReservedConcurrency", stack.api_concurrency, planned.api_concurrency),
    ):
        if after != before:
            changes.append(f"parameter {name}: {before:g} -> {after:g}")
    quotas = dict(stack.quotas)
    reserved = planned.worker_concurrency + planned.api_concurrency + planned.sweeper_concurrency
    needed = math.ceil((reserved + quotas["lambda_unreserved_floor"]) / 100) * 100
    if needed > quotas["lambda_concurrency"]:
        changes.append(f"quota Lambda concurrent executions: {quotas['lambda_concurrency']:,} -> {needed:,}")
        quotas["lambda_concurrency"] = needed
    writes = math.ceil(profile.files_per_second * m["table_writes_per_file"] * 1.2 / 1000) * 1000
    if writes > quotas["dynamodb_new_table_wcu"]:
        changes.append(
            f"table warm throughput {writes:,} writes/s (UpdateTable WarmThroughput before launch; "
            f"quota: {quotas['dynamodb_table_wcu']:,} per table)"
        )
        quotas["dynamodb_new_table_wcu"] = writes
    if planned.worker_concurrency > quotas["sqs_mapping_max_concurrency"]:
        changes.append("a second SQS event source mapping: one mapping's MaximumConcurrency stops at 1,000")
    return replace(planned, quotas=quotas), changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Profile()
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--jobs-per-user-day", type=float, default=defaults.jobs_per_user_day)
    parser.add_argument("--files-per-job", type=int, default=defaults.files_per_job)
    parser.add_argument("--peak-factor", type=float, default=defaults.peak_factor)
    parser.add_argument("--mean-file-bytes", type=int, default=defaults.mean_file_bytes)
    parser.add_argument("--webhook-share", type=float, default=defaults.webhook_share)
    parser.add_argument("--template", type=Path, default=ROOT / "build" / "prod" / "sam.yaml")
    parser.add_argument("--bench", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--scale", type=float, default=10.0, help="also plan for this multiple of the users")
    args = parser.parse_args(argv)
    if not args.template.exists():
        parser.error(f"{args.template} is missing: run `make package STAGE=prod` first")
    profile = Profile(
        args.users,
        args.jobs_per_user_day,
        args.files_per_job,
        args.peak_factor,
        args.mean_file_bytes,
        args.webhook_share,
    )
    stack = load_stack(args.template, ROOT / ".chalice" / "config.json", args.bench)
    rows = ceilings(profile, stack)
    print(render(profile, rows, args.markdown))
    bigger = replace(profile, users=int(profile.users * args.scale))
    planned, changes = plan_for(bigger, stack)
    print(f"\nat {args.scale:g}x the users ({bigger.users:,}), with no code change:")
    for change in changes or ["nothing to change"]:
        print(f"  - {change}")
    print(render(bigger, ceilings(bigger, planned), args.markdown))
    return 0 if binding(rows).headroom >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
