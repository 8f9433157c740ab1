"""Dependencies point down: each feature package may use only the packages below it.

    api, worker  ->  webhooks, jobs, keys, aws, core
    webhooks     ->  jobs, aws, core
    jobs, keys   ->  aws, core
    aws          ->  core
    core         ->  nothing of ours

`runtime.py` wires the graph and `admin.py` is a command, so they may use
anything; `local/` holds the dev-only runners that stand in for Lambda. Nothing
but app.py parses requests (`api.validation`) or reaches for the wiring
(`runtime`). Read from the source with `ast`, so an import that breaks the rule
fails here before it spreads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
CORE = "core"
ALLOWED = {
    "api": {"webhooks", "jobs", "keys", "aws", CORE},
    "worker": {"webhooks", "jobs", "keys", "aws", CORE},
    "webhooks": {"jobs", "aws", CORE},
    "jobs": {"aws", CORE},
    "keys": {"aws", CORE},
    "aws": {CORE},
    CORE: set(),
}
# The composition root, the admin command and the dev runners sit above every feature.
TOP = {"runtime", "admin", "local"}
# Only app.py parses requests or reaches for the wiring.
OUTER_MODULES = {"chalicelib.api.validation", "chalicelib.runtime"}


def module_name(path: Path) -> str:
    parts = path.relative_to(CHALICELIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """`chalicelib.jobs.store` -> `jobs`; a module directly in chalicelib/ is the core unless it is a top one."""
    parts = module.split(".")
    if len(parts) < 2:
        return CORE
    head = parts[1]
    if head in ALLOWED or head in TOP:
        return head
    return CORE


def imported_modules(path: Path) -> set[str]:
    """Every chalicelib module an `import x` or `from x import y` names, with `from chalicelib.jobs import store` as the module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("chalicelib.")}


def forbidden_imports(path: Path) -> list[str]:
    own = layer_of(module_name(path))
    if own in TOP:
        return []
    allowed = ALLOWED[own] | {own}
    found = imported_modules(path)
    # `from chalicelib import x` names `chalicelib` itself and `chalicelib.x`: only the latter is a dependency.
    return sorted(name for name in found if name.count(".") and layer_of(name) not in allowed)


def test_the_rule_sees_both_import_forms(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("import chalicelib.runtime\nfrom chalicelib.api import validation\n")

    assert OUTER_MODULES <= imported_modules(source)


@pytest.mark.parametrize(
    ("module", "imports", "broken"),
    [
        ("jobs/sample.py", "from chalicelib.webhooks import events\n", ["chalicelib.webhooks.events"]),
        ("aws/sample.py", "from chalicelib.jobs.store import JobStore\n", ["chalicelib.jobs.store"]),
        ("sample.py", "from chalicelib.aws import tracing\n", ["chalicelib.aws.tracing"]),
        ("webhooks/sample.py", "from chalicelib.api import live\n", ["chalicelib.api.live"]),
        ("api/sample.py", "from chalicelib.webhooks.delivery import Webhooks\nfrom chalicelib import models\n", []),
    ],
)
def test_the_rule_refuses_an_upward_import(tmp_path, monkeypatch, module, imports, broken):
    root = tmp_path / "chalicelib"
    source = root / module
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(imports)
    monkeypatch.setattr(f"{__name__}.CHALICELIB", root)

    found = forbidden_imports(source)

    assert set(broken) <= set(found) and bool(found) == bool(broken), found


MODULES = sorted(CHALICELIB.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_each_module_imports_only_the_packages_below_it(path):
    broken = forbidden_imports(path)

    assert not broken, f"{module_name(path)} ({layer_of(module_name(path))}) imports {broken}: see the rule above"


@pytest.mark.parametrize("path", [p for p in MODULES if module_name(p) != "chalicelib.runtime"], ids=module_name)
def test_no_chalicelib_module_imports_validation_or_runtime(path):
    reaching_up = sorted(imported_modules(path) & OUTER_MODULES)

    assert not reaching_up, (
        f"{module_name(path)} imports {reaching_up}: hand it what it needs from app.py or runtime.py"
    )


def test_the_top_of_chalicelib_stays_small():
    """Features live in packages; what is left directly in chalicelib/ is the core, the wiring and the command."""
    modules = sorted(path.name for path in CHALICELIB.glob("*.py"))
    too_long = {path.name: n for path in CHALICELIB.rglob("*.py") if (n := len(path.read_text().splitlines())) > 330}

    assert len(modules) <= 15, modules
    assert not too_long, f"over 330 lines: {too_long}"
