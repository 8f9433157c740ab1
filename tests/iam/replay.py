"""The IAM replay: recorded calls (tests/iam/recorder) against each function's role in the packaged template."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.iam.actions import Locator, Need, needs_for
from tests.iam.evaluate import Decision, Verdict, decide, grant_covers, grants
from tests.iam.template import DeployedTemplate, Function, Statement

# Called with the function's role by the Lambda service itself (its log stream,
# the X-Ray daemon), never by the function's code: no process here makes them.
PLATFORM_ACTIONS = frozenset(
    {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
)
# Grants whose calls only a cloud deployment makes, and why the dev stack does not.
CLOUD_ONLY = {
    "secretsmanager:GetSecretValue": "the dev stack hands the worker its signing secret in CALLBACK_SIGNING_SECRET; "
    "only a cloud worker reads CALLBACK_SIGNING_SECRET_ARN (chalicelib/runtime.py)",
}
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BUILD_ID = re.compile(r"(?<=/)[0-9a-f]{32}(?=\.zip$)")


@dataclass(frozen=True)
class ProcessRecord:
    module: str
    handler: str
    env: dict[str, str]
    calls: tuple[dict, ...]


@dataclass(frozen=True)
class Checked:
    function: Function
    call: dict
    need: Need
    decision: Decision

    @property
    def denied(self) -> bool:
        return self.decision.verdict is not Verdict.ALLOWED

    def describe(self) -> str:
        missing = {
            Verdict.EXPLICIT_DENY: "denied by " + ", ".join(s.label for s in self.decision.denied_by),
            Verdict.IMPLICIT_DENY: "no statement allows it"
            + (
                f" (the action is granted by {', '.join(s.label for s in self.decision.near)}, "
                "but not on this resource or not under these conditions)"
                if self.decision.near
                else ""
            ),
        }.get(self.decision.verdict, "allowed")
        context = f" with {self.need.context}" if self.need.context else ""
        note = f" [{self.need.note}]" if self.need.note else ""
        return (
            f"{self.function.logical_id} ({self.function.role_id}): {self.need.action} on {self.need.resource}"
            f"{context}{note}, from {self.call['service']}:{self.call['operation']}: {missing}"
        )


def load_records(folder: Path) -> list[ProcessRecord]:
    records = []
    for path in sorted(folder.glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        header = next((line for line in lines if line["kind"] == "process"), None)
        if header is None:
            continue
        calls = tuple(line for line in lines if line["kind"] == "call")
        records.append(ProcessRecord(header["module"], header["function"], header["env"], calls))
    return records


def replay(template: DeployedTemplate, records: list[ProcessRecord]) -> list[Checked]:
    checked = []
    for record in records:
        function = template.functions[record.handler]
        statements = template.statements(function.role_id)
        locator = Locator(template, function, record.env)
        for call in record.calls:
            for need in needs_for(call, locator):
                decision = decide(statements, need.action, need.resource, need.context)
                checked.append(Checked(function, call, need, decision))
    return checked


@dataclass(frozen=True)
class Grant:
    statement: Statement
    action: str
    resource: str

    @property
    def platform(self) -> bool:
        return self.action in PLATFORM_ACTIONS


def unused_grants(template: DeployedTemplate, checked: list[Checked]) -> dict[str, list[Grant]]:
    """Per function (logical id), the (statement, action, resource) grants no recorded call used."""
    unused: dict[str, list[Grant]] = {}
    for function in template.functions.values():
        used = [c for c in checked if c.function.logical_id == function.logical_id and not c.denied]
        unused[function.logical_id] = [
            Grant(statement, action, resource)
            for statement in template.statements(function.role_id)
            for action, resource in grants(statement)
            if not any(
                statement in c.decision.allowed_by and grant_covers(action, resource, c.need.action, c.need.resource)
                for c in used
            )
        ]
    return unused


def used_summary(checked: list[Checked], function: Function) -> Counter:
    """(action, resource with job ids folded, allowed-by labels or the verdict) -> how many recorded needs."""
    counted: Counter = Counter()
    for entry in checked:
        if entry.function.logical_id != function.logical_id:
            continue
        by = ", ".join(s.label.rsplit("/", 1)[-1] for s in entry.decision.allowed_by)
        outcome = by if not entry.denied else entry.decision.verdict.value.upper()
        counted[(entry.need.action, _BUILD_ID.sub("{build}", _JOB_ID.sub("{job}", entry.need.resource)), outcome)] += 1
    return counted
