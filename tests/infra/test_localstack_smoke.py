"""scripts/localstack_smoke.py and scripts/localstack_checks/, checked offline: no check written and never run."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "scripts" / "localstack_checks"
RUNNER = ROOT / "scripts" / "localstack_smoke.py"
CHECK_MODULES = ("dynamodb", "sqs", "s3")


@pytest.mark.parametrize("module", sorted(path.name for path in CHECKS.glob("*.py")) + [RUNNER.name])
def test_each_module_stays_small(module):
    path = RUNNER if module == RUNNER.name else CHECKS / module
    assert len(path.read_text().splitlines()) <= 200


@pytest.mark.parametrize("name", CHECK_MODULES)
def test_every_check_of_the_data_plane_is_run_by_the_smoke_runner(name):
    module = importlib.import_module(f"scripts.localstack_checks.{name}")
    checks = [
        function
        for function_name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not function_name.startswith("_")
    ]
    runner = RUNNER.read_text()

    assert checks
    assert [f.__name__ for f in checks if f"{name}.{f.__name__}" not in runner] == []
