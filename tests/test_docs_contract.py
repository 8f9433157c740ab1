"""Docs that drift from the code fail CI."""

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
