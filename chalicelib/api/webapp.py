"""The browser page at GET /app: start a download, watch it, cancel it, fetch the zip.

One HTML document with its style and script inline, assembled once from
chalicelib/static/ (chalice packages chalicelib/ whole, so the files ship with
the Lambda). Like /docs it needs no CDN, font or external script: the
Content-Security-Policy allows exactly the inline blocks by their sha256 hashes
(CSP Level 2 hash sources), and connections only to the API itself, so an
injected script or a swapped file cannot run.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from chalice import Response

STATIC_DIR = Path(__file__).parents[1] / "static"


@dataclass(frozen=True)
class Page:
    html: str
    csp: str


def csp_hash(block: str) -> str:
    """A CSP hash source: sha256 of the block's exact text between its tags, base64."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(style: str, script: str) -> str:
    # img-src data: only for the empty favicon, which stops browsers asking for /favicon.ico.
    return (
        f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@lru_cache(maxsize=1)
def page() -> Page:
    style = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("an inline block must not contain its own end tag")
    html = Template((STATIC_DIR / "app.html").read_text(encoding="utf-8")).substitute(style=style, script=script)
    return Page(html=html, csp=content_security_policy(style, script))


def app_response() -> Response:
    current = page()
    return Response(
        body=current.html,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": current.csp},
    )
