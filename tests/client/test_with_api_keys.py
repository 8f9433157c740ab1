"""The library and the CLI against a dev stack that requires API keys (AUTH_MODE=api-key), over real HTTP."""

from __future__ import annotations

import re

import pytest
from delineate_client import Client, JobNotFound, Unauthorized

from tests.client.test_cli import run
from tests.e2e.test_admin_keys import admin
from tests.support.devstack import FAST_FILES, start_dev_stack


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("keyed-client"), **{**FAST_FILES, "AUTH_MODE": "api-key"})
    try:
        keys = []
        for name in ("alice", "bob"):
            created = admin(stack, "create", "--name", name)
            assert created.returncode == 0, created.stderr
            keys.append(re.search(r"^DELINEATE_API_KEY=(\S+)$", created.stdout, re.M).group(1))
        yield stack, keys
    finally:
        stack.stop()


def test_a_keyed_client_downloads_and_another_key_cannot_see_its_job(keyed, tmp_path):
    stack, (alice, bob) = keyed
    with Client(stack.base_url, api_key=alice) as client:
        job = client.begin_download([70000, 70007])
        result = job.wait(timeout=60).download(tmp_path / "bundle.zip")
    assert result.size == job.document["size"] and result.sha256 == job.document["sha256"]

    with Client(stack.base_url, api_key=bob) as other, pytest.raises(JobNotFound):
        other.resume(job.id).refresh()
    with Client(stack.base_url) as anonymous, pytest.raises(Unauthorized):
        anonymous.begin_download([70000])


def test_the_cli_lists_only_the_callers_jobs(keyed, tmp_path):
    stack, (alice, bob) = keyed
    started = run(stack.base_url, "download", "70014", "--no-wait", cwd=tmp_path, DELINEATE_API_KEY=alice)
    assert started.returncode == 0, started.stderr
    job_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", started.stdout).group(0)

    mine = run(stack.base_url, "jobs", cwd=tmp_path, DELINEATE_API_KEY=alice)
    theirs = run(stack.base_url, "jobs", cwd=tmp_path, DELINEATE_API_KEY=bob)
    nobody = run(stack.base_url, "jobs", cwd=tmp_path)

    assert mine.returncode == 0 and job_id in mine.stdout
    assert theirs.returncode == 0 and job_id not in theirs.stdout
    assert nobody.returncode == 2  # no key: a usage error, said on stderr
