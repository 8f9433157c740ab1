"""Docs that drift from the code fail CI."""

import re
from pathlib import Path

from chalicelib.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENV_NAMES if f"`{name}`" not in readme]
    assert missing == []


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make dev" in readme and "make test" in readme


def test_readme_webhook_verification_snippet_accepts_a_real_signature_and_only_that():
    import time

    from chalicelib.webhooks.events import sign

    readme = (ROOT / "README.md").read_text()
    section = readme.split("**Verifying a signature.**", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # the README's own code, as a reader would paste it
    body = b'{"type":"job.completed"}'
    header = sign("whsec_docs", body, int(time.time()))

    assert namespace["verify"]("whsec_docs", header, body)
    assert not namespace["verify"]("whsec_other", header, body)
    assert not namespace["verify"]("whsec_docs", header, body + b" ")
    assert not namespace["verify"]("whsec_docs", sign("whsec_docs", body, int(time.time()) - 3600), body)


def module_table_paths() -> list[str]:
    """Every path named in the first column of docs/architecture.md's module tables (under ## Modules)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules_section = text.split("\n## Modules\n", 1)[1].split("\n## ", 1)[0]
    named = []
    for line in modules_section.splitlines():
        if line.startswith("| `"):
            named += re.findall(r"`([^`]+)`", line.split("|")[1])
    return named


def test_module_table_names_every_module_under_chalicelib():
    """A module added or renamed anywhere under chalicelib/ shows up in the table, by its path, or this fails."""
    chalicelib = ROOT / "chalicelib"
    modules = {path.relative_to(ROOT).as_posix() for path in chalicelib.rglob("*.py") if path.name != "__init__.py"}
    assert modules - set(module_table_paths()) == set()


def test_every_module_table_row_names_files_that_exist():
    named = module_table_paths()
    assert named, "docs/architecture.md has no module table under ## Modules"
    assert [path for path in named if not (ROOT / path).exists()] == []
