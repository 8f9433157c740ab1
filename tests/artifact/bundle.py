"""The deployment package as Lambda runs it: unpacked read-only, each function in its own fresh interpreter.

Shared by the artifact tier (tests/artifact) and `make bench`'s cold-start row
(scripts/bench_coldstart.py).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ZIP = ROOT / "build" / "prod" / "deployment.zip"
HOST = Path(__file__).with_name("function_host.py")
_WRITABLE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def unpack_read_only(zip_path: Path, directory: Path) -> Path:
    """Unpacks the zip and takes away write permission, like Lambda's /var/task: nothing can cache .pyc there."""
    with zipfile.ZipFile(zip_path) as bundle:
        bundle.extractall(directory)
    for path in [directory, *directory.rglob("*")]:
        path.chmod(path.stat().st_mode & ~_WRITABLE)
    return directory


def make_writable(directory: Path) -> None:
    """So a temporary directory can be removed afterwards."""
    for path in [directory, *directory.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def interpreter_env(environment: dict[str, str]) -> dict[str, str]:
    """Only what a function is given: no PYTHONPATH, no virtualenv, no bytecode writing."""
    env = {name: os.environ[name] for name in ("PATH", "LANG", "TZ") if name in os.environ}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", **environment}


def python_command(*args: str) -> list[str]:
    """This interpreter without site-packages (-S) or bytecode writing (-B): the standard library only."""
    return [sys.executable, "-S", "-B", *args]


class FunctionHost:
    """One execution environment of one function: imported once, then invoked event by event."""

    def __init__(self, code_dir: Path, handler: str, environment: dict[str, str], log: IO[bytes]) -> None:
        self.handler = handler
        self._process = subprocess.Popen(
            python_command(str(HOST), str(code_dir), handler),
            env=interpreter_env(environment),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self._read()  # {"ready": true}: the handler's module imported

    def _read(self) -> dict:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.handler}: the function's interpreter exited ({self._process.wait()})")
        return json.loads(line)

    def invoke(self, event: dict) -> dict:
        """The handler's answer as {"result": ...}, or its unhandled error as {"error": ..., "message": ...}."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(event) + "\n")
        self._process.stdin.flush()
        return self._read()

    def result(self, event: dict):
        answer = self.invoke(event)
        if "error" in answer:
            raise AssertionError(f"{self.handler} raised {answer['error']}: {answer['message']}")
        return answer["result"]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


@contextmanager
def function_host(code_dir: Path, handler: str, environment: dict[str, str], log_path: Path) -> Iterator[FunctionHost]:
    with open(log_path, "ab") as log:
        host = FunctionHost(code_dir, handler, environment, log)
        try:
            yield host
        finally:
            host.close()
