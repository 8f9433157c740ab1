"""`make dev`: the whole system on one machine.

  embedded emulator (moto server) ─ or any AWS_ENDPOINT_URL you give (LocalStack)
  infra/template.yaml deployed into it through CloudFormation, sample files seeded
  chalice local on PORT
  LOCAL_CONSUMERS SQS consumer processes + one sweeper process

Every setting comes from the environment. SIGINT/SIGTERM stop every child.
Run: python -m chalicelib.local.stack
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import NoReturn

import boto3

from chalicelib.config import Settings, SettingsError
from chalicelib.local import bootstrap
from chalicelib.local.processes import (
    PROJECT_DIR,
    env_with_pythonpath,
    free_port,
    python_module,
    spawn,
    stop_all,
)
from chalicelib.local.samples import seed_samples
from chalicelib.polling import wait_until

log = logging.getLogger("delineate.stack")


EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REAL_CREDENTIAL_NAMES = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


class Stopped(Exception):
    pass


def _command(process: subprocess.Popen) -> str:
    """The first words of a child's command line, to name it in a log line."""
    args = process.args
    return " ".join(map(str, args[:3])) if isinstance(args, (list, tuple)) else str(args)


def _on_signal(signum: int, _frame: FrameType | None) -> NoReturn:
    raise Stopped(signal.Signals(signum).name)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # An emulator accepts any credentials, so it never gets the developer's real
    # ones: they would be handed to every child process and written to stack.env.
    for name in REAL_CREDENTIAL_NAMES:
        env.pop(name, None)
    env.update(EMULATOR_CREDENTIALS)
    env.setdefault("AWS_XRAY_CONTEXT_MISSING", "IGNORE_ERROR")
    # With no daemon to receive them, segments are work on every request for nothing:
    # tracing is on when AWS_XRAY_DAEMON_ADDRESS names one (or when asked for outright).
    env.setdefault("AWS_XRAY_SDK_ENABLED", "true" if env.get("AWS_XRAY_DAEMON_ADDRESS") else "false")
    env.setdefault("DOWNLOAD_DELAY_MIN_MS", "10000")
    env.setdefault("DOWNLOAD_DELAY_MAX_MS", "200000")
    settings = Settings.from_env(env)
    # The queue's visibility timeout must outlast one file's simulated delay, or a
    # slow file is redelivered while still in progress (harmless, but wasteful).
    visibility = int(env.get("QUEUE_VISIBILITY_TIMEOUT") or math.ceil(settings.max_delay_seconds) + 30)
    env["QUEUE_VISIBILITY_TIMEOUT"] = str(visibility)
    env.setdefault("STALLED_JOB_SECONDS", str(max(60, 2 * visibility)))
    env.setdefault("BUNDLE_LEASE_SECONDS", str(visibility))
    env.setdefault("WORKER_CONCURRENCY", env.get("LOCAL_CONSUMERS", "4"))
    env.setdefault("WORKER_TIMEOUT_SECONDS", str(visibility))
    _webhook_env(env)
    return env_with_pythonpath(env)


def _webhook_env(env: dict[str, str]) -> None:
    """Webhooks on one machine: a fresh signing secret (unless given), loopback receivers allowed, quick retries.

    The secret is written to stack.env (0600) so a local receiver can verify signatures.
    """
    if not env.get("CALLBACK_SIGNING_SECRET"):
        env["CALLBACK_SIGNING_SECRET"] = "whsec_" + secrets.token_hex(32)
    env.setdefault("CALLBACK_ALLOW_PRIVATE", "true")
    env.setdefault("CALLBACK_RETRY_BASE_SECONDS", "1")
    env.setdefault("CALLBACK_MAX_ATTEMPTS", "5")


def _start_emulator(env: dict[str, str], processes: list, logs: Path) -> str:
    if env.get("AWS_ENDPOINT_URL"):
        log.info("using the emulator at AWS_ENDPOINT_URL=%s", env["AWS_ENDPOINT_URL"])
        return env["AWS_ENDPOINT_URL"]
    port = int(env.get("EMULATOR_PORT") or free_port())
    endpoint = f"http://127.0.0.1:{port}"
    processes.append(
        spawn(
            python_module("chalicelib.local.emulator", "-H", "127.0.0.1", "-p", str(port)), env, logs / "emulator.log"
        )
    )
    wait_until(lambda: _http_ok(f"{endpoint}/moto-api/"), timeout=30, what="the embedded emulator")
    log.info("embedded emulator (moto server) on %s", endpoint)
    return endpoint


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack %(levelname)s: %(message)s")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    try:
        env = _base_env()
    except SettingsError as refused:  # before anything starts: every request would trip over it
        log.error("not starting: %s", refused)
        return 2
    port = int(env.get("PORT", "8000"))
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")  # webhook events' statusUrl
    consumers = int(env.get("LOCAL_CONSUMERS", "4"))
    state_dir = Path(env.get("DEV_STATE_DIR") or PROJECT_DIR / ".dev")
    logs = state_dir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        env["AWS_ENDPOINT_URL"] = _start_emulator(env, processes, logs)
        os.environ.update(
            {
                k: env[k]
                for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            }
        )
        outputs = bootstrap.deploy(
            env.get("STACK_NAME", "delineate"),
            {
                "VisibilityTimeoutSeconds": env["QUEUE_VISIBILITY_TIMEOUT"],
                "MaxReceiveCount": env.get("MAX_RECEIVE_COUNT", "5"),
                # /app verifies zips from the emulator's presigned URLs, a cross-origin read.
                "DownloadPageOrigins": f"http://127.0.0.1:{port},http://localhost:{port}",
            },
        )
        env.update(bootstrap.service_env(outputs))
        seeded = seed_samples(boto3.client("s3"), env["S3_BUCKET_NAME"])
        log.info("resources from infra/template.yaml ready; %d sample files seeded", seeded)
        _write_env_file(env, state_dir)

        processes.append(
            spawn(
                python_module(
                    "chalicelib.local.api",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--stage",
                    env.get("CHALICE_STAGE", "local"),
                    "--no-autoreload",
                ),
                env,
                logs / "api.log",
            )
        )
        # Workers are replaceable, like Lambda execution environments: one that
        # crashes is started again, and SQS redelivers what it held.
        workers = {f"consumer-{index}": python_module("chalicelib.local.consumer") for index in range(consumers)}
        workers["sweeper"] = python_module("chalicelib.local.sweeper")
        replaceable: dict[int, str] = {}
        for name, args in workers.items():
            process = spawn(args, env, logs / f"{name}.log")
            processes.append(process)
            replaceable[process.pid] = name
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/health"), timeout=60, what="the API /health")
        print(
            f"Delineate is up in {time.monotonic() - started:.1f}s: http://127.0.0.1:{port} "
            f"(emulator {env['AWS_ENDPOINT_URL']}, {consumers} consumers, logs in {logs})",
            flush=True,
        )
        while True:
            for index, process in enumerate(processes):
                if process.poll() is None:
                    continue
                worker = replaceable.pop(process.pid, None)
                if worker is None:  # the emulator or the API: the stack cannot go on without it
                    log.error("%s exited with %s; stopping", _command(process), process.returncode)
                    return 1
                log.warning(
                    "%s (pid %d) exited with %s; starting a replacement", worker, process.pid, process.returncode
                )
                processes[index] = spawn(workers[worker], env, logs / f"{worker}.log")
                replaceable[processes[index].pid] = worker
            time.sleep(0.2)
    except Stopped as stop:
        log.info("%s received; stopping %d processes", stop, len(processes))
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(processes)


def _write_env_file(env: dict[str, str], state_dir: Path) -> None:
    """.dev/stack.env lets make targets (dlq-inspect, dlq-redrive) reach the running stack."""
    names = [
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        *bootstrap.OUTPUT_ENV.values(),
        "CALLBACK_SIGNING_SECRET",
    ]
    lines = [f"{name}={env[name]}" for name in names if name in env]
    write_private(state_dir / "stack.env", "\n".join(lines) + "\n")


def write_private(path: Path, text: str) -> None:
    """Owner-only (0600) from the first byte: the file will hold the stack's signing secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    sys.exit(run())
