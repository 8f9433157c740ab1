"""What the IAM replay drives through real dev stacks, so every function makes the calls it makes in the cloud.

Two stacks, since AUTH_MODE is per deployment:
- anonymous (AUTH_MODE=none, rate limit on): /health, /check on a present and
  a missing source, /start, a multi-file job with a webhook and an
  Idempotency-Key that ends in a bundle, its download redirect, and a job whose
  message is lost so that the sweeper process resumes it;
- with API keys (AUTH_MODE=api-key): a key made by the admin command, a job
  under it, the owner's job list, and a cancel (the owner's count settled).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

from chalicelib.local.processes import PROJECT_DIR
from chalicelib.polling import wait_until
from tests.faults.test_stuck_jobs import HOLD_SECONDS, initiate_held_back, steal
from tests.support.devstack import FAST_FILES, DevStack, poll_until_terminal, start_dev_stack
from tests.support.receiver import WebhookReceiver

RECORDER_PATH = Path(__file__).resolve().parent / "recorder"
MISSING_SOURCE = 70001  # not a multiple of 7: no sample (chalicelib/local/samples.py)
BUNDLE_FILES = [70000, 70007, 70014]
STALLED_SECONDS = 3
SWEEPER = {
    "STALLED_JOB_SECONDS": str(STALLED_SECONDS),
    "SWEEP_INTERVAL_SECONDS": "0.5",
    "QUEUE_VISIBILITY_TIMEOUT": "5",
}


def recording(folder: Path) -> dict[str, str]:
    """The settings that make a dev stack's processes record their AWS calls into `folder`."""
    return {"DELINEATE_IAM_RECORD": str(folder), "PYTHONPATH": str(RECORDER_PATH)}


def _post(stack: DevStack, path: str, body: dict, expect: tuple[int, ...], **headers: str) -> requests.Response:
    response = requests.post(stack.url(path), json=body, headers=headers, timeout=30)
    assert response.status_code in expect, (path, response.status_code, response.text)
    return response


def drive_anonymous(stack: DevStack) -> None:
    assert requests.get(stack.url("/health"), timeout=10).status_code == 200
    _post(stack, "/v1/download/check", {"file_id": BUNDLE_FILES[0]}, (200,))
    _post(stack, "/v1/download/check", {"file_id": MISSING_SOURCE}, (200, 404))
    _post(stack, "/v1/download/start", {"file_id": BUNDLE_FILES[1]}, (200, 202))
    with WebhookReceiver() as receiver:
        body = {"file_ids": BUNDLE_FILES, "callbackUrl": receiver.url("/hooks")}
        job_id = _post(stack, "/v1/download/initiate", body, (202,), **{"Idempotency-Key": "iam-replay-1"}).json()[
            "jobId"
        ]
        final, _ = poll_until_terminal(stack, job_id)
        assert final["status"] == "completed", final
        receiver.wait_for(1, timeout=30)
    redirect = requests.get(stack.url(f"/v1/download/{job_id}"), allow_redirects=False, timeout=10)
    assert redirect.status_code in (302, 303, 307), redirect.text
    requests.get(stack.url(f"/v1/download/status/{job_id}?include=files"), timeout=10).raise_for_status()
    drive_sweeper(stack)


def drive_sweeper(stack: DevStack) -> None:
    """A job whose message is lost (taken off the queue while the consumers are frozen): the sweeper resumes it."""
    sqs, queue = stack.aws("sqs"), stack.stack_env()["WORK_QUEUE_URL"]
    with stack.consumers_paused():
        job_id = initiate_held_back(stack, sqs, queue, [BUNDLE_FILES[0]], None)
        wait_until(lambda: steal(sqs, queue, job_id), HOLD_SECONDS + 5, 0.1, "the job message to take")
    final, _ = poll_until_terminal(stack, job_id, timeout=STALLED_SECONDS * 4 + 30)
    assert final["status"] == "completed", final


def _create_key(stack: DevStack) -> str:
    """The admin command, as an operator runs it (its calls are not a function's: not recorded)."""
    env = {name: value for name, value in stack.env.items() if not name.startswith("AWS_")}
    env.pop("DELINEATE_IAM_RECORD", None)
    created = subprocess.run(
        [sys.executable, "-m", "chalicelib.admin", "keys", "create", "--name", "iam-replay"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    return re.search(r"DELINEATE_API_KEY=(dlk_\S+)", created.stdout).group(1)


def drive_with_api_keys(stack: DevStack) -> None:
    headers = {"Authorization": f"Bearer {_create_key(stack)}"}
    kept = _post(stack, "/v1/download/initiate", {"file_ids": [BUNDLE_FILES[0]]}, (202,), **headers).json()["jobId"]
    cancelled = _post(stack, "/v1/download/initiate", {"file_ids": BUNDLE_FILES}, (202,), **headers).json()["jobId"]
    assert requests.delete(stack.url(f"/v1/download/{cancelled}"), headers=headers, timeout=10).status_code < 500
    listing = requests.get(stack.url("/v1/download/jobs"), headers=headers, timeout=10)
    assert listing.status_code == 200, listing.text
    status = requests.get(stack.url(f"/v1/download/status/{kept}"), headers=headers, timeout=10)
    assert status.status_code == 200, status.text


def record_all(tmp_dir: Path, folder: Path) -> None:
    """Drives both stacks with recording on; each is stopped before returning, so every record is written."""
    for settings, drive in (
        ({**FAST_FILES, **SWEEPER, "RATE_LIMIT_ENABLED": "true", "LOCAL_CONSUMERS": "2"}, drive_anonymous),
        ({**FAST_FILES, "AUTH_MODE": "api-key", "LOCAL_CONSUMERS": "1"}, drive_with_api_keys),
    ):
        stack = start_dev_stack(tmp_dir, **settings, **recording(folder))
        try:
            drive(stack)
        finally:
            stack.stop()
