"""An operator's view of the dev stack: EMF lines in its processes' logs, summed by `make stats`."""

from __future__ import annotations

import subprocess
import sys

import requests

from chalicelib.local.processes import PROJECT_DIR
from chalicelib.polling import wait_until
from scripts import stats
from tests.support.devstack import poll_until_terminal


def recent_metrics(dev_stack) -> dict[str, tuple[str, list[float]]]:
    logs = sorted((dev_stack.state_dir / "logs").glob("*.log"))
    lines = (line for path in logs for line in path.read_text(errors="replace").splitlines())
    return stats.collect(stats.emf_records(lines), since_ms=0)


def test_a_finished_job_shows_in_the_metrics_and_make_stats_sums_them(dev_stack):
    before = recent_metrics(dev_stack)
    counted = lambda name, found: len(found.get(name, ("", []))[1])  # noqa: E731
    job = requests.post(dev_stack.url("/v1/download/initiate"), json={"file_ids": [70000, 70007, 70001]}, timeout=10)
    final, _ = poll_until_terminal(dev_stack, job.json()["jobId"])
    assert final["status"] == "completed"

    # The worker's EMF line is written when its invocation ends, just after the write it reports.
    after = wait_until(
        lambda: (
            (found := recent_metrics(dev_stack))
            and counted("JobsCompleted", found) > counted("JobsCompleted", before)
            and counted("BundleBytes", found) > counted("BundleBytes", before)
            and found
        ),
        timeout=10,
        what="the completed job's metrics in the dev logs",
    )

    assert counted("FilesPrepared", after) - counted("FilesPrepared", before) >= 2
    assert counted("FilesFailed", after) - counted("FilesFailed", before) >= 1
    assert counted("FileWaitSeconds", after) > counted("FileWaitSeconds", before)
    summary = subprocess.run(
        [sys.executable, "scripts/stats.py", "--logs", str(dev_stack.state_dir / "logs"), "--minutes", "10"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {"FilesPrepared", "JobsCompleted", "JobDurationSeconds", "BundleBytes"} <= {
        line.split()[0] for line in summary.splitlines()[2:]
    }
