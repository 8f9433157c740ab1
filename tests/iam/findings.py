"""Denials the replay found in the packaged template and that are reported, not yet fixed in infra/.

Each entry is (function logical id, IAM action, resource glob) with a comment
saying what the finding is. A recorded denial that matches an entry does not
fail the tier (it is listed in build/iam-report.md as a known finding); an
entry that no recorded call matches any more fails it, so the entry is removed
together with the fix in infra/chalice-overrides.yaml.
"""

from __future__ import annotations

KNOWN_DENIALS: list[tuple[str, str, str]] = []
