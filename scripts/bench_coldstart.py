"""`make bench`'s cold-start row: the API function's first invocation over a bare boto3 client.

    python scripts/bench_coldstart.py        (or: make bench-coldstart; make bench runs it too)

Packages the current code (scripts/package.py), unpacks deployment.zip into a
read-only directory like Lambda's /var/task, then times, each in a fresh
interpreter that sees only the zip (python -S -B, PYTHONDONTWRITEBYTECODE=1):

- app:  `import app` and one `GET /` through the Lambda handler, with an API
        Gateway proxy event (tests/artifact/cold_start.py), the API function's
        packaged settings, rate limiter off (with it on, GET / also builds the
        limiter's DynamoDB client and makes one UpdateItem);
- sdk:  `import boto3; boto3.client("dynamodb")`, from the same zip.

The two alternate, round after round, so a busy machine slows both alike; the
row is the ratio of the medians. Target: <= 2.0 (issue 20). Interpreter start
is in both sides, as it is in every cold start.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.artifact.bundle import interpreter_env, make_writable, python_command, unpack_read_only  # noqa: E402
from tests.artifact.cold_start import __file__ as PROBE  # noqa: E402
from tests.artifact.events import api_event  # noqa: E402

TARGET_RATIO = 2.0
ROUNDS = 15
QUICK_ROUNDS = 7
SDK_ONLY = 'import sys; sys.path.insert(0, sys.argv[1]); import boto3; boto3.client("dynamodb")'


def package(outdir: Path) -> Path:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package.py"), "--stage", "prod", "--out", str(outdir)],
        cwd=ROOT,
        env={**env, "AWS_DEFAULT_REGION": "us-east-1"},
        check=True,
        capture_output=True,
    )
    return outdir


def api_settings(build: Path) -> dict[str, str]:
    """The API function's packaged environment, without the stack's references (GET / reads none of them)."""
    import yaml

    from scripts.package import CfnLoader

    template = yaml.load((build / "sam.yaml").read_text(encoding="utf-8"), Loader=CfnLoader)
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def _seconds(command: list[str], env: dict[str, str], stdin: str = "") -> float:
    started = time.perf_counter()
    subprocess.run(command, input=stdin, env=env, check=True, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - started


def measure(quick: bool = False) -> dict:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    with tempfile.TemporaryDirectory() as scratch:
        build = package(Path(scratch) / "prod")
        code = unpack_read_only(build / "deployment.zip", Path(scratch) / "task")
        base = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "APIHandler"}
        app_env = interpreter_env({**api_settings(build), **base, "RATE_LIMIT_ENABLED": "false"})
        sdk_env = interpreter_env(base)
        event = json.dumps(api_event("GET", "/"))
        app_s, sdk_s = [], []
        try:
            for _ in range(rounds):
                app_s.append(_seconds(python_command(PROBE, str(code)), app_env, event))
                sdk_s.append(_seconds(python_command("-c", SDK_ONLY, str(code)), sdk_env))
        finally:
            make_writable(code)
    ratio = statistics.median(app_s) / statistics.median(sdk_s)
    row = {
        "rounds": rounds,
        "app_get_root_s": round(statistics.median(app_s), 3),
        "boto3_client_s": round(statistics.median(sdk_s), 3),
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
    }
    print(summary(row), flush=True)
    return row


def summary(row: dict) -> str:
    return (
        f"cold start (import app + GET /) / boto3.client: {row['ratio']}x "
        f"({row['app_get_root_s']} s / {row['boto3_client_s']} s, median of {row['rounds']}; target <= {row['target_ratio']}x)"
    )


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "").lower() in ("1", "true", "yes")
    row = measure(quick)
    out = ROOT / "build" / "bench-coldstart.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n")
    return 0 if row["ratio"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
