"""Starts the real dev stack (`python -m chalicelib.local.stack`) and drives it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import requests

from chalicelib.local.processes import PROJECT_DIR, free_port
from chalicelib.models import JobStatus
from chalicelib.polling import wait_until

AWS_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")

# The shared `dev_stack` (tests/conftest.py): files ready in well under a second, four consumers, no rate limit.
FAST_FILES = {
    "DOWNLOAD_DELAY_MIN_MS": "200",
    "DOWNLOAD_DELAY_MAX_MS": "500",
    "LOCAL_CONSUMERS": "4",
    "RATE_LIMIT_ENABLED": "false",
    "START_WAIT_MS": "8000",
}


@dataclass
class DevStack:
    process: subprocess.Popen
    base_url: str
    marker: str
    log_path: Path
    env: dict = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C does to `make dev`
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def leftover_pids(self) -> list[int]:
        """Processes still carrying this stack's marker in their environment."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if self.marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    # -- fault injection: the stack's own processes and its emulator -------------

    @property
    def state_dir(self) -> Path:
        return Path(self.env["DEV_STATE_DIR"])

    def stack_env(self) -> dict[str, str]:
        """What `make dev` wrote to $DEV_STATE_DIR/stack.env: endpoint, table, queues, bucket."""
        pairs = (line.partition("=") for line in (self.state_dir / "stack.env").read_text().splitlines())
        return {name: value for name, _, value in pairs if name}

    def aws(self, service: str, **config):
        """A boto3 client talking to this stack's emulator (short timeouts unless told)."""
        import boto3
        from botocore.config import Config

        env = self.stack_env()
        options = {"connect_timeout": 2, "read_timeout": 10, "retries": {"max_attempts": 2}, **config}
        return boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(**options),
        )

    def pids_running(self, needle: str) -> list[int]:
        """This stack's processes whose command line contains `needle` (e.g. a module name)."""
        found = []
        for pid in self.leftover_pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in cmdline and state != "Z":
                found.append(pid)
        return sorted(found)

    def consumer_pids(self) -> list[int]:
        return self.pids_running("chalicelib.local.consumer")

    @contextmanager
    def consumers_paused(self) -> Iterator[None]:
        """SIGSTOP every consumer for the block: messages wait, held ones outlive their visibility."""
        pids = self.consumer_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def emulator_pid(self) -> int:
        (pid,) = self.pids_running("chalicelib.local.emulator")
        return pid

    def wait_for_consumers(self, count: int, timeout: float = 30, replacing: tuple[int, ...] = ()) -> list[int]:
        """Until `count` consumers run, none of them in `replacing` (killed ones the stack replaces).

        A SIGKILLed process lingers in /proc for a moment after the signal is sent.
        """

        def settled() -> list[int] | None:
            pids = self.consumer_pids()
            return pids if len(pids) == count and not set(pids) & set(replacing) else None

        try:
            return wait_until(settled, timeout, interval=0.1, what=f"{count} consumers")
        except TimeoutError:
            raise AssertionError(
                f"expected {count} consumers, found {self.consumer_pids()}:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_dev_stack(
    tmp_dir: Path, timeout: float = 90, command: Sequence[str] | None = None, **settings: str
) -> DevStack:
    """`command` (default `python -m chalicelib.local.stack`, i.e. `make dev`) started with `settings` in its env."""
    port = free_port()
    marker = f"DELINEATE_TEST_STACK={uuid.uuid4()}"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") or name in ("AWS_DEFAULT_REGION",)
    }
    env.update(
        {
            "PORT": str(port),
            "STACK_NAME": f"e2e-{port}",
            "DELINEATE_TEST_STACK": marker.split("=", 1)[1],
            "DEV_STATE_DIR": str(tmp_dir / f"state-{port}"),
        }
    )
    endpoint = os.environ.get("DELINEATE_E2E_ENDPOINT")  # e.g. LocalStack for `make test-localstack`
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(settings)
    log_path = tmp_dir / f"stack-{port}.log"
    process = subprocess.Popen(
        list(command or [sys.executable, "-m", "chalicelib.local.stack"]),
        cwd=PROJECT_DIR,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = DevStack(process, f"http://127.0.0.1:{port}", marker, log_path, env)

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"dev stack exited with {process.returncode}:\n{stack.log_tail()}")
        try:
            return requests.get(stack.url("/health"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, timeout, interval=0.25, what="the dev stack's /health")
    except TimeoutError:
        stack.stop()
        raise TimeoutError(f"dev stack not healthy within {timeout}s:\n{stack.log_tail()}") from None
    return stack


def poll_until_terminal(
    stack: DevStack, job_id: str, timeout: float = 60, interval: float = 0.2
) -> tuple[dict, list[dict]]:
    """Polls status like a client until the job ends; returns the final document and every observation.

    The one "wait until the job is terminal" of the e2e tier and `make bench`."""
    seen: list[dict] = []

    def terminal() -> dict | None:
        response = requests.get(stack.url(f"/v1/download/status/{job_id}"), timeout=10)
        assert response.status_code == 200, response.text
        document = response.json()
        seen.append({**document, "_retryAfter": response.headers.get("Retry-After")})
        return document if JobStatus(document["status"]).terminal else None

    try:
        return wait_until(terminal, timeout, interval, what=f"job {job_id} to end"), seen
    except TimeoutError:
        raise AssertionError(
            f"job {job_id} not terminal after {timeout}s; last: {seen[-1] if seen else None}"
        ) from None
