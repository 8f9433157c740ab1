"""Dependencies point inward: nothing under chalicelib/ reaches up to request parsing or the wiring.

app.py parses requests (validation) and wires the graph (runtime); every other
module gets what it needs handed in. Read from the source with `ast`, so a new
import that breaks the rule fails here before it spreads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
OUTER_MODULES = {"chalicelib.validation", "chalicelib.runtime"}
# The wiring itself builds every service, so it may import anything.
ALLOWED_IMPORTERS = {"chalicelib.runtime"}


def module_name(path: Path) -> str:
    parts = path.relative_to(CHALICELIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module an `import x` or `from x import y` names, with `from chalicelib import runtime` as the module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_rule_sees_both_import_forms(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("import chalicelib.runtime\nfrom chalicelib import validation\n")

    assert OUTER_MODULES <= imported_modules(source)


INNER_MODULES = sorted(path for path in CHALICELIB.rglob("*.py") if module_name(path) not in ALLOWED_IMPORTERS)


@pytest.mark.parametrize("path", INNER_MODULES, ids=lambda path: module_name(path))
def test_no_chalicelib_module_imports_validation_or_runtime(path):
    name = module_name(path)

    reaching_up = sorted(imported_modules(path) & OUTER_MODULES)

    assert not reaching_up, f"{name} imports {reaching_up}: hand it what it needs from app.py or runtime.py"
