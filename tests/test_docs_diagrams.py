"""The diagrams in the docs are drawn from the code: a transition added on one side only, or a file
a diagram names that no longer exists, fails here. Each diagram has one home (docs/architecture.md
for the architecture's); a copy elsewhere fails too."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.models import ALLOWED_FROM, JobStatus

ROOT = Path(__file__).resolve().parents[1]
DIAGRAM_HOME = ROOT / "docs" / "architecture.md"
DOCS_WITH_DIAGRAMS = (ROOT / "README.md", ROOT / "chalicelib" / "README.md", *sorted((ROOT / "docs").glob("*.md")))
START = "[*]"  # Mermaid's start and end pseudo-state

_MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```", re.DOTALL | re.MULTILINE)
# `a --> b` or `a --> b: label`; Mermaid's own syntax, state ids without spaces.
_TRANSITION = re.compile(r"^\s*(\S+)\s*-->\s*([^\s:]+)\s*(?::.*)?$")
# A module a diagram names: `app.py`, or a path under chalicelib/ such as `api/service.py`.
_PYTHON_FILE = re.compile(r"[\w/]+\.py\b")


def mermaid_blocks(path: Path) -> list[str]:
    return [block.strip() for block in _MERMAID_BLOCK.findall(path.read_text())]


def state_diagrams(path: Path) -> list[str]:
    return [block for block in mermaid_blocks(path) if block.splitlines()[0].strip() == "stateDiagram-v2"]


def transitions_drawn(diagram: str) -> set[tuple[str, str]]:
    drawn = set()
    for line in diagram.splitlines()[1:]:
        if line.strip().startswith("%%"):  # a Mermaid comment
            continue
        match = _TRANSITION.match(line)
        if match:
            drawn.add((match.group(1), match.group(2)))
    return drawn


def transitions_allowed() -> set[tuple[str, str]]:
    """ALLOWED_FROM as edges, plus where a job starts and where it stops.

    A job starts in the one status no transition leads to, and stops in the
    terminal ones.
    """
    edges = {(source.value, target.value) for target, sources in ALLOWED_FROM.items() for source in sources}
    initial = [status for status in JobStatus if status not in ALLOWED_FROM]
    assert initial == [JobStatus.QUEUED], "a job has exactly one initial status"
    edges.add((START, initial[0].value))
    edges |= {(status.value, START) for status in JobStatus if status.terminal}
    return edges


def test_the_state_machine_is_drawn_on_the_architecture_page():
    assert len(state_diagrams(DIAGRAM_HOME)) == 1


def test_every_state_diagram_draws_exactly_the_transitions_models_allows():
    expected = transitions_allowed()
    for path in DOCS_WITH_DIAGRAMS:
        for diagram in state_diagrams(path):
            drawn = transitions_drawn(diagram)
            assert drawn - expected == set(), f"{path.relative_to(ROOT)} draws transitions models.py forbids"
            assert expected - drawn == set(), f"{path.relative_to(ROOT)} misses transitions models.py allows"


def test_the_architecture_diagrams_live_on_the_architecture_page():
    kinds = [block.splitlines()[0].strip() for block in mermaid_blocks(DIAGRAM_HOME)]
    assert kinds == ["flowchart LR", "sequenceDiagram", "stateDiagram-v2"]


def test_each_diagram_has_one_home():
    homes: dict[str, list[str]] = {}
    for path in DOCS_WITH_DIAGRAMS:
        for block in mermaid_blocks(path):
            homes.setdefault(block, []).append(str(path.relative_to(ROOT)))
    assert [pages for pages in homes.values() if len(pages) > 1] == []


def test_every_file_a_diagram_names_exists():
    """`app.py`, or a module under chalicelib/ by its path there (`worker/processing.py`): renamed, it fails here."""
    missing = []
    for path in DOCS_WITH_DIAGRAMS:
        for block in mermaid_blocks(path):
            for name in _PYTHON_FILE.findall(block):
                if not ((ROOT / name).is_file() or (ROOT / "chalicelib" / name).is_file()):
                    missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == []


def test_the_parser_reads_labels_and_comments():
    diagram = "stateDiagram-v2\n    [*] --> a: start here\n    %% a --> b\n    a-->b\n    b --> [*]"
    assert transitions_drawn(diagram) == {(START, "a"), ("a", "b"), ("b", START)}
