"""The IAM replay tier (`make test-iam`): calls recorded in real dev processes, judged against build/<stage>/sam.yaml.

The recording stacks start only when DELINEATE_IAM_REPLAY is set (make test-iam
sets it): `make test` runs the evaluator's own tests here and leaves
test_replay.py out (--ignore), since CI runs the replay once as its own tier.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.local.processes import PROJECT_DIR
from tests.iam.template import DeployedTemplate

TEMPLATE = PROJECT_DIR / "build" / os.environ.get("STAGE", "prod") / "sam.yaml"
RECORDS = PROJECT_DIR / "build" / "iam-calls"
REPORT = PROJECT_DIR / "build" / "iam-report.md"


@pytest.fixture(scope="session")
def template() -> DeployedTemplate:
    if not TEMPLATE.exists():  # what `make package` writes, built here when a test run comes first
        subprocess.run(
            [sys.executable, str(PROJECT_DIR / "scripts" / "package.py"), "--stage", TEMPLATE.parent.name],
            check=True,
            cwd=PROJECT_DIR,
        )
    return DeployedTemplate(TEMPLATE)


@pytest.fixture(scope="session")
def records_folder(tmp_path_factory) -> Path:
    """The recorded calls of the replay's dev stacks, driven once per session."""
    if not os.environ.get("DELINEATE_IAM_REPLAY"):
        pytest.fail("the IAM replay runs under `make test-iam` (DELINEATE_IAM_REPLAY=1); `make test` leaves it out")
    from tests.iam.scenarios import record_all

    shutil.rmtree(RECORDS, ignore_errors=True)
    RECORDS.mkdir(parents=True)
    record_all(tmp_path_factory.mktemp("iam-replay"), RECORDS)
    return RECORDS
