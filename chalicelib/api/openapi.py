"""The API contract as data: chalicelib/openapi.json, served raw and rendered as HTML.

openapi.json is the machine-readable form of DESIGN.md's HTTP contract and the
single source the contract and fuzz tests check the routes against. The /docs
page is rendered here, on the server, from that document: no script, no CDN,
so it works offline and under a strict Content-Security-Policy (the one inline
style block is allowed by its hash, nothing else is).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalice import Response

DOCUMENT_PATH = Path(__file__).parents[1] / "openapi.json"
# Listed once under "Response headers" rather than on every response.
EVERY_RESPONSE_HEADERS = frozenset(
    {
        "X-Request-ID",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Strict-Transport-Security",
        "Referrer-Policy",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;color:#1b1f24}
h1{margin-bottom:0}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.5rem}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;border-radius:4px}
code{padding:.1rem .3rem}pre{padding:.6rem;overflow:auto;white-space:pre-wrap}
section.op{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.2rem 1rem 1rem}
.method{display:inline-block;min-width:4.5rem;text-align:center;font-weight:700;color:#fff;border-radius:4px;padding:.1rem .4rem;margin-right:.5rem}
.get{background:#1f6feb}.post{background:#1a7f37}.delete{background:#cf222e}.put,.patch{background:#9a6700}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.status{font-weight:700}.muted{color:#57606a}ul.props{margin:.2rem 0;padding-left:1.2rem}
nav ul{columns:2}a{color:#0969da}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
DOCS_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document shipped with the app (chalice packages chalicelib/ into the Lambda)."""
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


def document_response() -> Response:
    return Response(body=document(), status_code=200, headers={"Content-Type": "application/json"})


def docs_response() -> Response:
    return Response(
        body=render_html(document()),
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": DOCS_CSP},
    )


# -- rendering ------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _code(value: Any) -> str:
    return f"<code>{_e(value)}</code>"


def _text(value: str | None) -> str:
    """Descriptions are Markdown-ish; show them as escaped text with `code` spans and paragraphs."""
    if not value:
        return ""
    paragraphs = []
    for paragraph in value.split("\n\n"):
        parts = _e(paragraph).split("`")
        rendered = "".join(f"<code>{part}</code>" if index % 2 else part for index, part in enumerate(parts))
        paragraphs.append(f"<p>{rendered}</p>")
    return "".join(paragraphs)


def _anchor(ref: str) -> str:
    return "schema-" + ref.rsplit("/", 1)[-1]


def _resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _type_of(schema: dict) -> str:
    """A one-line summary of a schema: type, constraints, enum, or a link to a named schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        extra = {k: v for k, v in schema.items() if k not in ("$ref", "description")}
        link = f'<a href="#{_anchor(schema["$ref"])}">{_e(name)}</a>'
        return link + (" " + _type_of(extra) if extra else "")
    if "allOf" in schema:
        return " and ".join(_type_of(part) for part in schema["allOf"])
    kind = schema.get("type", "")
    kind = " | ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        kind = f"array of {_type_of(schema.get('items', {}))}"
    else:
        kind = _e(kind)
    facts = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("format", "format"),
    ):
        if key in schema:
            facts.append(f"{label} {_e(schema[key])}")
    if "pattern" in schema:
        facts.append(f"pattern {_code(schema['pattern'])}")
    if "enum" in schema:
        facts.append("one of " + ", ".join(_code(json.dumps(v)) for v in schema["enum"]))
    if "const" in schema:
        facts.append("always " + _code(json.dumps(schema["const"])))
    return (kind + (f' <span class="muted">({"; ".join(facts)})</span>' if facts else "")).strip() or "any"


def _properties(schema: dict) -> str:
    props = schema.get("properties") or {}
    if not props:
        return ""
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td>{_code(name)}{'' if name in required else ' <span class=muted>optional</span>'}</td>"
        f"<td>{_type_of(prop)}</td><td>{_text(prop.get('description'))}</td></tr>"
        for name, prop in props.items()
    )
    return f"<table><tr><th>Field</th><th>Type</th><th>Notes</th></tr>{rows}</table>"


def _schema_block(schema: dict) -> str:
    return f"<p>{_type_of(schema)}</p>"


def _parameters(spec: dict, operation: dict) -> str:
    params = [_resolve(spec, p) for p in operation.get("parameters", [])]
    if not params:
        return ""
    rows = "".join(
        f"<tr><td>{_code(p['name'])}</td><td>{_e(p['in'])}</td><td>{'yes' if p.get('required') else 'no'}</td>"
        f"<td>{_type_of(p.get('schema', {}))}</td><td>{_text(p.get('description'))}</td></tr>"
        for p in params
    )
    return (
        "<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Required</th><th>Type</th>"
        f"<th>Notes</th></tr>{rows}</table>"
    )


def _request_body(spec: dict, operation: dict) -> str:
    body = operation.get("requestBody")
    if not body:
        return ""
    body = _resolve(spec, body)
    parts = [
        f"<p>{_code(media)}: {_type_of(content.get('schema', {}))}</p>"
        for media, content in body.get("content", {}).items()
    ]
    return "<h4>Request body</h4>" + "".join(parts)


def _responses(spec: dict, operation: dict) -> str:
    rows = []
    for status, response in sorted(operation.get("responses", {}).items()):
        response = _resolve(spec, response)
        content = (
            "".join(
                f"{_code(media)} {_type_of(c.get('schema', {}))}<br>"
                for media, c in response.get("content", {}).items()
            )
            or '<span class="muted">no body</span>'
        )
        extra_headers = [name for name in response.get("headers", {}) if name not in EVERY_RESPONSE_HEADERS]
        header_list = ", ".join(_code(name) for name in extra_headers)
        rows.append(
            f'<tr><td class="status">{_e(status)}</td><td>{_text(response.get("description"))}</td>'
            f"<td>{content}</td><td>{header_list}</td></tr>"
        )
    return (
        "<h4>Responses</h4><table><tr><th>Status</th><th>Meaning</th><th>Body</th><th>Headers</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _operation(spec: dict, path: str, method: str, operation: dict) -> str:
    anchor = operation.get("operationId", f"{method}-{path}")
    return (
        f'<section class="op" id="{_e(anchor)}"><h3><span class="method {method}">{method.upper()}</span>'
        f"{_code(path)}</h3><p><strong>{_e(operation.get('summary', ''))}</strong></p>"
        f"{_text(operation.get('description'))}{_parameters(spec, operation)}"
        f"{_request_body(spec, operation)}{_responses(spec, operation)}</section>"
    )


def _common_headers(spec: dict) -> str:
    rows = "".join(
        f"<tr><td>{_code(name)}</td><td>{'always' if header.get('required') else 'when applicable'}</td>"
        f"<td>{_type_of(header.get('schema', {}))}</td><td>{_text(header.get('description'))}</td></tr>"
        for name, header in spec["components"]["headers"].items()
    )
    return (
        "<h2 id=headers>Response headers</h2><table><tr><th>Name</th><th>Sent</th><th>Type</th>"
        f"<th>Notes</th></tr>{rows}</table>"
    )


def render_html(spec: dict) -> str:
    info = spec.get("info", {})
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items() if method in METHODS
    ]
    nav = "".join(
        f'<li><a href="#{_e(op.get("operationId", ""))}">{method.upper()} {_e(path)}</a></li>'
        for path, method, op in operations
    )
    schemas = "".join(
        f'<section id="schema-{_e(name)}"><h3>{_e(name)}</h3>{_text(schema.get("description"))}'
        f"{_schema_block(schema) if not schema.get('properties') else ''}{_properties(schema)}"
        + "".join(
            f"<p class=muted>Example:</p><pre>{_e(json.dumps(example, indent=2))}</pre>"
            for example in schema.get("examples", [])[:1]
            if isinstance(example, dict)
        )
        + "</section>"
        for name, schema in spec["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_e(info.get('title', 'API'))} API reference</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(info.get('title', 'API'))} <span class=muted>{_e(info.get('version', ''))}</span></h1>"
        f"<p>{_e(info.get('summary', ''))}</p>{_text(info.get('description'))}"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> '
        f"(OpenAPI {_e(spec.get('openapi', ''))}).</p>"
        f"<nav><ul>{nav}</ul></nav><h2 id=operations>Operations</h2>"
        + "".join(_operation(spec, path, method, op) for path, method, op in operations)
        + _common_headers(spec)
        + f"<h2 id=schemas>Schemas</h2>{schemas}</body></html>"
    )
