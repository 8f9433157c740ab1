"""The key command against a real dev stack, found the way `make api-key` finds it: through stack.env."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from chalicelib.local.processes import PROJECT_DIR
from tests.support.devstack import DevStack, start_dev_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("admin-keys"), DOWNLOAD_DELAY_ENABLED="false", LOCAL_CONSUMERS="1")
    yield stack
    stack.stop()


def admin(stack: DevStack, *argv: str) -> subprocess.CompletedProcess:
    """Like a developer's shell: no AWS settings of its own, only the stack's DEV_STATE_DIR."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.pop("JOBS_TABLE_NAME", None)
    env["DEV_STATE_DIR"] = stack.env["DEV_STATE_DIR"]
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.admin", "keys", *argv],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_list_and_revoke_a_key_on_the_dev_stack(stack):
    created = admin(stack, "create", "--name", "x")
    assert created.returncode == 0, created.stderr
    key_line, id_line = created.stdout.splitlines()
    key = re.fullmatch(r"DELINEATE_API_KEY=(dlk_\S+)", key_line).group(1)
    key_id = re.fullmatch(r"DELINEATE_API_KEY_ID=([0-9a-f]{16})", id_line).group(1)

    listed = admin(stack, "list", "--json")
    revoked = admin(stack, "revoke", key_id)
    after = admin(stack, "list", "--json")

    assert listed.returncode == 0, listed.stderr
    (document,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (document["id"], document["name"], document["revokedAt"]) == (key_id, "x", None)
    assert key not in listed.stdout
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(after.stdout.splitlines()[0])["revokedAt"] is not None
