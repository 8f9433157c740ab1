"""The diagrams in the docs are drawn from the code: a transition added on one side only fails here."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.models import ALLOWED_FROM, JobStatus

ROOT = Path(__file__).resolve().parents[1]
DIAGRAM_HOME = ROOT / "chalicelib" / "README.md"
DOCS_WITH_DIAGRAMS = (DIAGRAM_HOME, ROOT / "README.md")
START = "[*]"  # Mermaid's start and end pseudo-state

_MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```", re.DOTALL | re.MULTILINE)
# `a --> b` or `a --> b: label`; Mermaid's own syntax, state ids without spaces.
_TRANSITION = re.compile(r"^\s*(\S+)\s*-->\s*([^\s:]+)\s*(?::.*)?$")


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


def test_the_state_machine_is_drawn_next_to_the_code():
    assert len(state_diagrams(DIAGRAM_HOME)) == 1


def test_every_state_diagram_draws_exactly_the_transitions_models_allows():
    expected = transitions_allowed()
    for path in DOCS_WITH_DIAGRAMS:
        for diagram in state_diagrams(path):
            drawn = transitions_drawn(diagram)
            assert drawn - expected == set(), f"{path.relative_to(ROOT)} draws transitions models.py forbids"
            assert expected - drawn == set(), f"{path.relative_to(ROOT)} misses transitions models.py allows"


def test_readme_diagrams_are_copies_of_the_ones_next_to_the_code():
    home = set(mermaid_blocks(DIAGRAM_HOME))
    readme = mermaid_blocks(ROOT / "README.md")
    assert readme, "README.md's Architecture section shows the diagrams"
    assert [block.splitlines()[0] for block in readme if block not in home] == []


def test_the_parser_reads_labels_and_comments():
    diagram = "stateDiagram-v2\n    [*] --> a: start here\n    %% a --> b\n    a-->b\n    b --> [*]"
    assert transitions_drawn(diagram) == {(START, "a"), ("a", "b"), ("b", START)}
