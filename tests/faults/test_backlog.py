"""A backlog is not a stall: consumers frozen past the stall threshold while work waits, then thawed.

Every consumer is frozen (SIGSTOP) with jobs mid-way: files already started
come due and their messages pile up, visible, beside start messages not yet
taken. The freeze outlasts the sweeper's backlog grace (BACKLOG_GRACE_FACTOR x
STALLED_JOB_SECONDS) twice over, so the sweeper does resume jobs behind the
backlog; with MAX_JOB_RESUMES = 1 a resume that spent the budget would fail
them at the second verdict. Afterwards every job must complete exactly, and
every file must have been prepared exactly once: the workers log each
preparation they start (INFO "file preparation started"), read here from the
consumers' own logs.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from chalicelib.worker.sweeper import BACKLOG_GRACE_FACTOR
from tests.faults import client as faults
from tests.faults import test_stuck_jobs as stuck

SCENARIO = "backlog past the stall threshold (sweeper)"
STALLED, SWEEP_INTERVAL, MAX_RESUMES = 2, stuck.SWEEP_INTERVAL, 1
# The stuck-jobs stack (two consumers, short visibility, a sweep every half second), with
# whole-second files, one spare resume, and INFO logs: the workers log each preparation they start.
STACK_SETTINGS = {
    **stuck.STACK_SETTINGS,
    "DOWNLOAD_DELAY_MIN_MS": "1000",
    "DOWNLOAD_DELAY_MAX_MS": "1000",
    "STALLED_JOB_SECONDS": str(STALLED),
    "MAX_JOB_RESUMES": str(MAX_RESUMES),
    "LOG_LEVEL": "INFO",
}
# Two verdicts behind the backlog: the first resumes, the second would fail a job whose budget it spent.
FREEZE_SECONDS = 2 * (BACKLOG_GRACE_FACTOR * STALLED + 1 + SWEEP_INTERVAL) + 1
JOBS, FILES_PER_JOB = 4, 6


def preparation_starts(stack) -> Counter:
    """(jobId, fileId) -> how many times a worker started preparing it, from every consumer's log."""
    starts: Counter = Counter()
    for log in (stack.state_dir / "logs").glob("consumer*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"file preparation started"' not in line:
                continue
            event = json.loads(line[line.index("{") :])
            starts[(event["jobId"], int(event["fileId"]))] += 1
    return starts


def swept_resumes(stack) -> int:
    resumed = 0
    for log in (stack.state_dir / "logs").glob("sweeper*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"swept stalled jobs"' in line:
                resumed += len(json.loads(line[line.index("{") :]).get("resumed", []))
    return resumed


def test_consumers_frozen_behind_a_backlog_fail_no_job_and_prepare_every_file_once(fault_stack, record):
    stack, tally = fault_stack, faults.Tally()
    jobs = {
        faults.initiate(stack, files, tally=tally).json()["jobId"]: files
        for files in (
            list(faults.SMALL_SAMPLES[i : i + 3]) + [70001 + 7 * i, 70002 + 7 * i, 70003 + 7 * i] for i in range(JOBS)
        )
    }
    record.jobs = len(jobs)
    faults.wait_for(
        lambda: all(faults.status(stack, job_id)["status"] == "processing" for job_id in jobs),
        timeout=20,
        interval=0.05,
        what="every job started",
    )

    with stack.consumers_paused():
        frozen_at = time.monotonic()
        faults.wait_for(lambda: time.monotonic() - frozen_at >= FREEZE_SECONDS, timeout=FREEZE_SECONDS + 5)
        mid_freeze = {job_id: faults.status(stack, job_id)["status"] for job_id in jobs}
    final = faults.wait_terminal(stack, list(jobs), timeout=60, tally=tally)

    faults.judge_completed(
        stack, tally, final, jobs, faults.sample_sources(f for files in jobs.values() for f in files)
    )
    tally.fill(record)
    starts = preparation_starts(stack)
    resumed = swept_resumes(stack)
    record.notes.append(
        f"frozen {FREEZE_SECONDS:.0f}s (stall threshold {STALLED}s); {resumed} resumes behind the backlog; "
        f"{sum(starts.values())} preparation starts for {JOBS * FILES_PER_JOB} files"
    )

    assert set(mid_freeze.values()) == {"processing"}, mid_freeze
    assert tally.lost == [] and tally.miscounted == [] and tally.server_errors == 0
    expected = {(job_id, file_id) for job_id, files in jobs.items() for file_id in files}
    assert set(starts) == expected
    assert set(starts.values()) == {1}, {key: n for key, n in starts.items() if n != 1}
