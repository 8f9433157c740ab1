"""Docs that drift from the code fail CI.

The README is the front door and links the pages under docs/, which hold the
long form: these tests read each fact from the page that is its one home.
"""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CHALICELIB = ROOT / "chalicelib"
README_MAX_LINES = 400
# Every page whose links are checked: the front door, the docs pages and the two package READMEs.
LINKED_PAGES = (README, *sorted(DOCS.glob("*.md")), CHALICELIB / "README.md", ROOT / "client" / "README.md")

# [text](target) outside code; an image's ![alt](target) matches too.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)


def section(path: Path, heading: str) -> str:
    """The text under `heading` (a `## ` line), up to the next heading of that level or higher."""
    text = path.read_text()
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    ends = [match.start() for match in re.finditer(r"^#{1,%d} " % len(level), text[start:], flags=re.MULTILINE)]
    return text[start : start + ends[0]] if ends else text[start:]


def relative_links(path: Path) -> list[str]:
    prose = _INLINE_CODE.sub("", _FENCE.sub("", path.read_text()))
    return [target for target in _LINK.findall(prose) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_anchor(heading) for heading in _HEADING.findall(_FENCE.sub("", path.read_text()))}


def module_table_paths() -> list[str]:
    """Every path named in the first column of docs/architecture.md's module tables."""
    named = []
    for line in section(DOCS / "architecture.md", "## Modules").splitlines():
        if line.startswith("| `"):
            named += re.findall(r"`([^`]+)`", line.split("|")[1])
    return named


# A setting or module whose docs row the docs owner writes (docs/ is theirs; the text is in the
# branch's report). Remove a name once its row is there.
def test_configuration_table_lists_every_setting():
    table = section(DOCS / "operations.md", "## Configuration")
    missing = [name for name in ENV_NAMES if f"| `{name}` |" not in table]
    assert missing == []


def test_readme_gives_the_two_commands():
    readme = README.read_text()
    assert "make dev" in readme and "make test" in readme


def test_webhook_verification_snippet_accepts_a_real_signature_and_only_that():
    import time

    from chalicelib.webhooks.events import sign

    snippet = section(DOCS / "webhooks.md", "## Verifying a signature").split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # the page's own code, as a reader would paste it
    body = b'{"type":"job.completed"}'
    header = sign("whsec_docs", body, int(time.time()))

    assert namespace["verify"]("whsec_docs", header, body)
    assert not namespace["verify"]("whsec_other", header, body)
    assert not namespace["verify"]("whsec_docs", header, body + b" ")
    assert not namespace["verify"]("whsec_docs", sign("whsec_docs", body, int(time.time()) - 3600), body)


def test_module_table_names_every_module_under_chalicelib():
    """A module added or renamed anywhere under chalicelib/ shows up in the table, by its path, or this fails."""
    modules = {path.relative_to(ROOT).as_posix() for path in CHALICELIB.rglob("*.py") if path.name != "__init__.py"}
    assert modules - set(module_table_paths()) == set()


def test_every_module_table_row_names_files_that_exist():
    named = module_table_paths()
    assert named, "docs/architecture.md has no module table under ## Modules"
    assert [path for path in named if not (ROOT / path).exists()] == []


def test_readme_is_a_front_door_of_at_most_400_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move the long form to docs/"


def test_readme_links_every_docs_page():
    linked = {(README.parent / target.split("#", 1)[0]).resolve() for target in relative_links(README)}
    pages = {page.resolve() for page in DOCS.glob("*.md")}
    assert pages, "docs/ holds no pages"
    assert sorted(page.name for page in pages - linked) == []


def test_every_relative_link_points_at_a_file_and_heading_that_exist():
    broken = []
    for page in LINKED_PAGES:
        for target in relative_links(page):
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_link_checker_reads_links_and_headings_as_github_does(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Waiting for a change: long-poll and `SSE`\n\n"
        "[a](other.md#x) `[not](code.md)` [web](https://example.com)\n\n```\n[nor](fenced.md)\n```\n"
    )
    assert relative_links(page) == ["other.md#x"]
    assert anchors(page) == {"title", "waiting-for-a-change-long-poll-and-sse"}


def test_the_capacity_tables_are_what_make_capacity_prints():
    """README and docs/capacity.md show the model's default-profile table (FALLBACK_MEASURES: the last full bench)."""
    from scripts.capacity import ROOT, Profile, ceilings, load_stack, render

    stack = load_stack(None, ROOT / ".chalice" / "config.json", None)
    rows = [
        line
        for line in render(Profile(), ceilings(Profile(), stack), markdown=True).splitlines()
        if line.startswith("|")
    ]

    for page in (README, DOCS / "capacity.md"):
        assert all(row in page.read_text() for row in rows), f"{page.name}: run `python scripts/capacity.py --markdown`"
