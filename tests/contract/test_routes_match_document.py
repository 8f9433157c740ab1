"""The routes in app.py, the OpenAPI document and the route table in docs/api.md say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate

from chalicelib.api.openapi import METHODS, document

ROOT = Path(__file__).resolve().parents[2]


def _app_operations() -> set[tuple[str, str]]:
    import app

    return {
        (method, path)
        for path, methods in app.app.routes.items()
        for method, entry in methods.items()
        if not entry.view_name.startswith("not_found_")
    }


def _documented_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in document()["paths"].items() for method in item if method in METHODS
    }


def test_the_document_is_valid_openapi():
    validate(document())


def test_every_route_is_documented_and_every_documented_operation_is_routed():
    assert _app_operations() == _documented_operations()


def test_every_operation_has_an_id_and_documents_rate_limiting():
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            assert operation.get("operationId"), (method, path)
            assert "429" in operation["responses"], (method, path)


def test_the_docs_route_table_lists_only_documented_operations():
    page = (ROOT / "docs" / "api.md").read_text()
    rows = re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", page, flags=re.MULTILINE)
    assert rows, "docs/api.md has no route table"
    table_operations = {(method, re.sub(r"\{jobId\}", "{job_id}", path)) for method, path in rows}
    assert table_operations <= _documented_operations()
