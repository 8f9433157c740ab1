"""The `delineate` console script, installed from ./client, run as a subprocess against the dev stack."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.faultproxy import path_starts

DELINEATE = str(Path(sys.executable).parent / "delineate")
SLOW_JOB = [str(70000 + 7 * n) for n in range(14)]  # about 2 s of work on the test stack
LONG_JOB = [str(file_id) for file_id in range(70000, 70200)]  # about 20 s: still running when cancelled
JOB_ID = re.compile(r"job ([0-9a-f-]{36})")


def run(url: str, *args: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DELINEATE_URL": url, **env}
    environment.pop("DELINEATE_API_KEY", None) if "DELINEATE_API_KEY" not in env else None
    return subprocess.run([DELINEATE, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def fields(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if re.match(r"^(path|size|sha256): ", line))


def test_download_prints_plain_progress_then_path_size_and_sha256(api, tmp_path):
    done = run(api, "download", "70000", "70007", "70014", "-o", "out.zip", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout  # not a terminal: plain lines
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"job [0-9a-f-]{36} queued, 3 files", lines[0])
    assert lines[-4] == "downloading out.zip"
    assert lines[-4 - 1] == "files 3/3 completed"
    data = (tmp_path / "out.zip").read_bytes()
    assert fields(done.stdout) == {
        "path": "out.zip",
        "size": str(len(data)),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_download_files_writes_each_file_into_the_directory(api, tmp_path):
    done = run(api, "download", "70000", "70007", "70001", "--files", "parts", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in (tmp_path / "parts").iterdir()) == ["70000.zip", "70007.zip"]
    assert done.stdout.count("sha256: ") == 2
    for path in (tmp_path / "parts").iterdir():
        assert f"sha256: {hashlib.sha256(path.read_bytes()).hexdigest()}" in done.stdout


def test_no_available_file_exits_1(api, tmp_path):
    done = run(api, "download", "70001", "70002", cwd=tmp_path)
    assert done.returncode == 1
    assert "none of the requested files was available" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["download"], "the following arguments are required: FILE_ID"),
        (["download", "abc"], "invalid int value: 'abc'"),
        (["download", "5"], "file_ids[0]: must be >= 10000"),  # the service's 400
        (["download", "70000", "-o", "a.zip", "--files", "d"], "not allowed with argument"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(api, tmp_path, args, message):
    done = run(api, *args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr


def test_an_unreachable_service_exits_3(tmp_path):
    from chalicelib.local.processes import free_port

    done = run(f"http://127.0.0.1:{free_port()}", "download", "70000", cwd=tmp_path)
    assert done.returncode == 3
    assert "cannot reach" in done.stderr and "after retries" in done.stderr


def test_503_and_a_lost_answer_are_retried_into_one_job(api, api_proxy, tmp_path):
    api_proxy.add(path_starts("/v1/download/initiate"), "respond", times=2, status=503, headers={"Retry-After": "1"})
    api_proxy.add(path_starts("/v1/download/initiate"), "drop_before_answer")
    done = run(api, "download", "70000", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    posts = api_proxy.requests("POST", "/v1/download/initiate")
    assert [seen.answer_status for seen in posts] == [None, None, 202, 200]
    assert len({seen.header("Idempotency-Key") for seen in posts}) == 1


def test_no_wait_status_and_cancel(api, tmp_path):
    started = run(api, "download", *LONG_JOB, "--no-wait", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    job_id = JOB_ID.match(started.stdout).group(1)
    assert started.stdout.splitlines()[-1] == f"delineate resume {job_id} --url {api}"

    status = run(api, "status", job_id, "--json", cwd=tmp_path)
    assert status.returncode == 0 and json.loads(status.stdout)["jobId"] == job_id
    assert run(api, "status", job_id, cwd=tmp_path).stdout.startswith(f"job {job_id} ")

    cancelled = run(api, "cancel", job_id, cwd=tmp_path)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"job {job_id} cancelled\n")
    assert run(api, "cancel", job_id, cwd=tmp_path).returncode == 0  # already cancelled: nothing to do
    resumed = run(api, "resume", job_id, cwd=tmp_path)
    assert resumed.returncode == 1 and "was cancelled" in resumed.stderr

    missing = run(api, "status", "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d", cwd=tmp_path)
    assert missing.returncode == 1 and "no such job" in missing.stderr


def test_cancelling_a_completed_job_exits_1(api, tmp_path):
    done = run(api, "download", "70000", cwd=tmp_path)
    job_id = JOB_ID.match(done.stdout).group(1)
    refused = run(api, "cancel", job_id, cwd=tmp_path)
    assert refused.returncode == 1 and "already completed" in refused.stderr


def test_ctrl_c_leaves_the_job_running_and_prints_the_resume_command(api, tmp_path):
    environment = {**os.environ, "DELINEATE_URL": api}
    process = subprocess.Popen(
        [DELINEATE, "download", *SLOW_JOB, "-o", "out.zip"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    job_id = JOB_ID.match(first).group(1)
    assert process.stdout.readline().startswith("files ")  # waiting now
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    command = f"delineate resume {job_id} --url {api} -o out.zip"
    assert stderr.splitlines() == [f"delineate: interrupted; job {job_id} keeps running. Resume with:", f"  {command}"]
    assert not (tmp_path / "out.zip").exists()

    resumed = run(api, *shlex.split(command)[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert fields(resumed.stdout)["sha256"] == hashlib.sha256((tmp_path / "out.zip").read_bytes()).hexdigest()


def test_jobs_against_a_server_without_api_keys_exits_2_saying_why(api, tmp_path):
    done = run(api, "jobs", cwd=tmp_path)
    assert done.returncode == 2 and "without API keys" in done.stderr


def test_jobs_lists_pages_with_the_api_key(api, api_proxy, tmp_path):
    page1 = {"jobs": [{"jobId": "a" * 8, "status": "completed", "progress": 100}], "nextCursor": "c1"}
    page2 = {"jobs": [{"jobId": "b" * 8, "status": "queued", "progress": 0}], "nextCursor": None}
    for page in (page1, page2):
        api_proxy.add(
            path_starts("/v1/download/jobs"),
            "respond",
            status=200,
            headers={"Content-Type": "application/json"},
            body=json.dumps(page).encode(),
        )
    done = run(api, "jobs", "--api-key", "k-123", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split()[:2] for line in done.stdout.splitlines()] == [
        ["aaaaaaaa", "completed"],
        ["bbbbbbbb", "queued"],
    ]
    first, second = api_proxy.requests("GET", "/v1/download/jobs")
    assert first.header("Authorization") == "Bearer k-123" and "cursor=c1" in second.path


@pytest.mark.parametrize("status, message", [(403, "runs without API keys"), (401, "unauthorized")])
def test_jobs_refused_exits_2(api, api_proxy, tmp_path, status, message):
    body = json.dumps({"error": "x", "message": "no", "requestId": "r"}).encode()
    api_proxy.add(path_starts("/v1/download/jobs"), "respond", status=status, body=body)
    done = run(api, "jobs", cwd=tmp_path, DELINEATE_API_KEY="k")
    assert done.returncode == 2 and message in done.stderr


def test_the_console_script_is_installed_from_the_repo():
    assert Path(DELINEATE).exists()
    import delineate_client

    assert "site-packages" in delineate_client.__file__  # installed, not imported from the source tree


def test_resume_refuses_a_token_naming_another_host_and_sends_it_no_key(api, api_proxy, tmp_path):
    from tests.client.test_untrusted_input import token_for
    from tests.support.receiver import WebhookReceiver

    with WebhookReceiver() as elsewhere:
        token = token_for(elsewhere.url(""), "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d")
        for command in ("resume", "status", "cancel"):
            refused = run(api, command, token, cwd=tmp_path, DELINEATE_API_KEY="k-secret")
            assert refused.returncode == 2, (command, refused.stderr)
            assert f"names the service {elsewhere.url('')}" in refused.stderr and "--url" in refused.stderr
        assert elsewhere.deliveries == [] and api_proxy.requests() == []

        chosen = run(api, "status", token, "--url", elsewhere.url(""), cwd=tmp_path, DELINEATE_API_KEY="k-secret")
        assert chosen.returncode != 0  # not a Delineate service, but the user named it
        assert [seen.headers.get("authorization") for seen in elsewhere.deliveries] == ["Bearer k-secret"]


def test_resume_follows_a_token_for_the_configured_service(api, tmp_path):
    from tests.client.test_untrusted_input import token_for

    started = run(api, "download", "70000", "--no-wait", cwd=tmp_path)
    job_id = JOB_ID.match(started.stdout).group(1)
    resumed = run(api, "resume", token_for(api, job_id), "-o", "out.zip", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert fields(resumed.stdout)["sha256"] == hashlib.sha256((tmp_path / "out.zip").read_bytes()).hexdigest()


def test_the_installed_package_is_typed():
    """PEP 561: the wheel ships py.typed (client/pyproject.toml package-data); `make lint` type-checks
    tests/client/typing_usage.py against it."""
    import delineate_client

    assert (Path(delineate_client.__file__).parent / "py.typed").is_file()
