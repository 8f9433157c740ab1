"""Docs that drift from the code fail CI."""

from pathlib import Path

from chalicelib.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]


# Settings whose README row is written by the docs owner (README.md is theirs); the text is in
# the branch's report. Remove a name once its row is there.
AWAITING_README_ROW = {"BUNDLE_MAX_BYTES"}


def test_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENV_NAMES if f"`{name}`" not in readme and name not in AWAITING_README_ROW]
    assert missing == []
    assert AWAITING_README_ROW <= set(ENV_NAMES)


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


def test_readme_architecture_table_names_every_module():
    """A module added or renamed under chalicelib/ shows up in the table, or this fails."""
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.split("## Architecture", 1)[1].splitlines() if line.startswith("| `chalicelib/")]
    named = set()
    for row in rows:
        cell = row.split("|")[1]
        named |= {name.strip().strip("`").removeprefix("chalicelib/") for name in cell.split(",")}
    modules = {path.name for path in (ROOT / "chalicelib").glob("*.py") if path.name != "__init__.py"}
    assert modules - named == set()
