"""build/iam-report.md: what each function called, what its role allowed, and what it was granted but never used."""

from __future__ import annotations

from pathlib import Path

from tests.iam.replay import CLOUD_ONLY, Checked, Grant, ProcessRecord, unused_grants, used_summary
from tests.iam.template import ACCOUNT, REGION, STACK, DeployedTemplate


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _grant_note(grant: Grant) -> str:
    if grant.platform:
        return "used by the Lambda service for the function (logs, X-Ray), not by its code: not recordable here"
    return CLOUD_ONLY.get(grant.action, "no recorded call used it")


def render(
    template: DeployedTemplate,
    records: list[ProcessRecord],
    checked: list[Checked],
    findings: list[Checked],
    known: list[Checked],
) -> str:
    calls = sum(len(record.calls) for record in records)
    lines = [
        "# IAM replay",
        "",
        f"Template: `{template.path}` resolved for account {ACCOUNT}, region {REGION}, stack `{STACK}`.",
        f"Recorded: {calls} AWS calls from {len(records)} dev processes "
        f"({len(checked)} authorisations after mapping operations to IAM actions).",
        "",
        "## Denied calls",
        "",
    ]
    if not findings and not known:
        lines.append("None: every recorded call is allowed by its function's role.")
    for entry in findings:
        lines.append(f"- **NEW** {entry.describe()}")
    for entry in known:
        lines.append(f"- known finding (tests/iam/findings.py): {entry.describe()}")
    for function in sorted(template.functions.values(), key=lambda f: f.logical_id):
        lines += ["", f"## {function.logical_id} (`{function.handler}`, role `{function.role_id}`)", ""]
        summary = used_summary(checked, function)
        lines += [_row("action", "resource", "allowed by", "recorded"), _row("---", "---", "---", "---:")]
        lines += [_row(a, r, by, n) for (a, r, by), n in sorted(summary.items())]
        if not summary:
            lines.append(_row("(no recorded calls)", "", "", 0))
        unused = unused_grants(template, checked)[function.logical_id]
        lines += ["", "Granted but not used by any recorded call:", ""]
        lines += [_row("statement", "action", "resource", "note"), _row("---", "---", "---", "---")]
        lines += [_row(g.statement.label.rsplit("/", 1)[-1], g.action, g.resource, _grant_note(g)) for g in unused]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
