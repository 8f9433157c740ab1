"""Checks one response against chalicelib/openapi.json: status, content type, headers, body schema."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chalicelib.api.openapi import document

DOCUMENT = document()
_BASE = "urn:delineate:openapi"
_REGISTRY = Registry().with_resource(_BASE, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(pointer: str) -> tuple[str, dict]:
    """Follows $refs from a JSON pointer; returns the final pointer and the object there."""
    while True:
        node = DOCUMENT
        for token in pointer.lstrip("#/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        if "$ref" not in node:
            return pointer, node
        pointer = node["$ref"]


def _validate(instance, pointer: str, what: str) -> None:
    validator = Draft202012Validator({"$ref": f"{_BASE}{pointer}"}, registry=_REGISTRY, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what} violates {pointer}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def _header_value(raw: str, schema: dict):
    kinds = schema.get("type")
    if kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds):
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


def assert_conforms(method: str, route: str, response) -> dict | str | None:
    """`response` is a chalice.test HTTPResponse; returns the decoded body."""
    operation_pointer = f"#/paths/{_escape(route)}/{method.lower()}"
    _, operation = _resolve(operation_pointer)
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {route} answered {status}, not documented (documented: {sorted(operation['responses'])}); "
        f"body: {response.body[:300]!r}"
    )
    pointer, documented = _resolve(f"{operation_pointer}/responses/{status}")
    headers = {name.lower(): value for name, value in response.headers.items()}

    for name in documented.get("headers", {}):
        header_pointer, header = _resolve(f"{pointer}/headers/{_escape(name)}")
        if name.lower() not in headers:
            assert not header.get("required"), f"{method} {route} {status}: required header {name} missing"
            continue
        _validate(
            _header_value(headers[name.lower()], header.get("schema", {})),
            f"{header_pointer}/schema",
            f"{method} {route} {status} header {name}",
        )

    content = documented.get("content")
    if not content:
        return None
    # A response without Content-Type leaves as application/json: chalice local and
    # API Gateway's Lambda proxy both default to it (chalice.test shows it missing).
    media_type = headers.get("content-type", "application/json").split(";")[0].strip()
    assert media_type in content, f"{method} {route} {status}: Content-Type {media_type!r} not in {sorted(content)}"
    body = response.body.decode()
    if media_type == "application/json":
        body = json.loads(body)
    _validate(body, f"{pointer}/content/{_escape(media_type)}/schema", f"{method} {route} {status} body")
    return body
