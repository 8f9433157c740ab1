"""Every AWS call the functions made in real dev processes is allowed by that function's role in sam.yaml.

The calls are recorded by the processes themselves (tests/iam/recorder) while
tests/iam/scenarios.py drives two dev stacks over HTTP; each is mapped to IAM
actions and deployed ARNs (tests/iam/actions.py) and judged by the role's
statements (tests/iam/evaluate.py). build/iam-report.md lists what each
function used and what it was granted but never used.
"""

from __future__ import annotations

import dataclasses
import fnmatch

import pytest

from tests.iam.conftest import REPORT
from tests.iam.evaluate import Verdict, decide
from tests.iam.findings import KNOWN_DENIALS
from tests.iam.replay import Checked, load_records, replay
from tests.iam.report import render, write

FUNCTION_HANDLERS = ("app.app", "app.process_work", "app.sweep_stalled_jobs")


def _known(entry: Checked, finding: tuple[str, str, str]) -> bool:
    function, action, resource = finding
    return (entry.function.logical_id, entry.need.action) == (function, action) and fnmatch.fnmatchcase(
        entry.need.resource, resource
    )


@pytest.fixture(scope="module")
def records(records_folder):
    return load_records(records_folder)


@pytest.fixture(scope="module")
def checked(template, records):
    results = replay(template, records)
    denied = [entry for entry in results if entry.denied]
    known = [entry for entry in denied if any(_known(entry, finding) for finding in KNOWN_DENIALS)]
    new = [entry for entry in denied if entry not in known]
    write(REPORT, render(template, records, results, new, known))
    return results


def test_every_function_made_recorded_calls(records):
    calls = {handler: 0 for handler in FUNCTION_HANDLERS}
    for record in records:
        calls[record.handler] = calls.get(record.handler, 0) + len(record.calls)

    assert all(calls.values()), f"a function made no recorded call: {calls}"


def test_the_replay_saw_the_calls_that_need_special_mapping(checked):
    """The exceptions of the action mapping really occurred, so the replay checked them against the roles."""
    seen = {(entry.call["service"], entry.call["operation"], entry.need.action) for entry in checked}
    presigned = [entry for entry in checked if entry.call.get("presign")]

    assert ("dynamodb", "TransactWriteItems", "dynamodb:PutItem") in seen
    assert ("s3", "HeadObject", "s3:GetObject") in seen
    assert ("s3", "UploadPart", "s3:PutObject") in seen
    assert ("sqs", "DeleteMessageBatch", "sqs:DeleteMessage") in seen
    assert any(entry.need.context.get("s3:prefix") for entry in checked if entry.need.action == "s3:ListBucket")
    assert presigned and {entry.need.action for entry in presigned} == {"s3:GetObject"}


def test_every_recorded_call_is_allowed_by_its_functions_role(checked):
    denied = [entry for entry in checked if entry.denied]
    new = [entry.describe() for entry in denied if not any(_known(entry, finding) for finding in KNOWN_DENIALS)]

    assert not new, f"{len(new)} recorded calls the template would deny (see {REPORT}):\n" + "\n".join(new)


def test_every_known_finding_still_occurs(checked):
    """An allow-list entry that no call matches any more is stale: remove it along with the infra fix."""
    denied = [entry for entry in checked if entry.denied]
    stale = [finding for finding in KNOWN_DENIALS if not any(_known(entry, finding) for entry in denied)]

    assert not stale, f"tests/iam/findings.py lists denials that no longer occur: {stale}"


def test_a_recorded_call_outside_a_narrowed_role_is_reported(template, checked):
    """The tier can fail: take a real recorded call, drop its action from the statement that allowed it."""
    entry = next(c for c in checked if c.function.logical_id == "ProcessWork" and c.call["operation"] == "UploadPart")
    statements = template.statements(entry.function.role_id)
    narrowed = [
        dataclasses.replace(s, body={**s.body, "Action": [a for a in s.body["Action"] if a != entry.need.action]})
        if s in entry.decision.allowed_by
        else s
        for s in statements
    ]

    decision = decide(narrowed, entry.need.action, entry.need.resource, entry.need.context)
    reported = dataclasses.replace(entry, decision=decision).describe()

    assert decision.verdict is Verdict.IMPLICIT_DENY
    assert "ProcessWork" in reported and "s3:PutObject" in reported and entry.need.resource in reported
    assert "no statement allows it" in reported


def test_the_report_lists_each_functions_unused_grants(checked):
    text = REPORT.read_text(encoding="utf-8")

    for function in ("APIHandler", "ProcessWork", "SweepStalledJobs"):
        assert f"## {function} " in text
    assert text.count("Granted but not used by any recorded call:") == 3
    assert "logs:CreateLogStream" in text  # the Lambda service's own calls are listed, and said to be
