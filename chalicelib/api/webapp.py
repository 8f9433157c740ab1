"""The browser page at GET /app: start a download, watch it, cancel it, fetch and verify the zips.

One HTML document with its style and scripts inline, assembled once from
chalicelib/static/ (chalice packages chalicelib/ whole, so the files ship with
the Lambda). Like /docs it needs no CDN, font or external script: the
Content-Security-Policy allows exactly the inline blocks by their sha256 hashes
(CSP Level 2 hash sources), so an injected script or a swapped file cannot run.
Connections go to the API itself and to the one origin its presigned URLs point
at (the bucket's endpoint), which the page fetches a zip from to verify it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from chalice import Response

STATIC_DIR = Path(__file__).parents[1] / "static"
# In the order the page runs them: the vendored SHA-256 (@noble/hashes, see its header), then ours.
SCRIPTS = {"sha256": "vendor/noble-hashes-sha256.js", "verify": "verify.js", "script": "app.js"}


@dataclass(frozen=True)
class Page:
    html: str
    style_hash: str
    script_hashes: tuple[str, ...]


def csp_hash(block: str) -> str:
    """A CSP hash source: sha256 of the block's exact text between its tags, base64."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode() + "'"


def csp_origin(url: str | None) -> str | None:
    """scheme://host[:port] of an http(s) URL, as a CSP source; None for anything else.

    Checked, not trusted: the value comes from the endpoint boto3 signs for, and a
    wildcard, a space or a ';' would widen or rewrite the policy."""
    if not url:
        return None
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    if parts.scheme not in ("https", "http") or not netloc or "@" in netloc:
        return None
    if any(char in netloc for char in "*;, \t\r\n'\""):
        return None
    return f"{parts.scheme}://{netloc}"


def content_security_policy(style_hash: str, script_hashes: tuple[str, ...], download_origin: str | None) -> str:
    # img-src data: only for the empty favicon, which stops browsers asking for /favicon.ico.
    connect = " ".join(["'self'", *filter(None, [csp_origin(download_origin)])])
    return (
        f"default-src 'none'; script-src {' '.join(script_hashes)}; style-src {style_hash}; "
        f"connect-src {connect}; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@lru_cache(maxsize=1)
def page() -> Page:
    style = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    scripts = {name: (STATIC_DIR / path).read_text(encoding="utf-8") for name, path in SCRIPTS.items()}
    if "</style" in style.lower() or any("</script" in script.lower() for script in scripts.values()):
        raise ValueError("an inline block must not contain its own end tag")
    html = Template((STATIC_DIR / "app.html").read_text(encoding="utf-8")).substitute(style=style, **scripts)
    return Page(html=html, style_hash=csp_hash(style), script_hashes=tuple(map(csp_hash, scripts.values())))


def app_response(download_origin: str | None) -> Response:
    """The page; `download_origin` is where the bucket's presigned URLs point (None: verifying cannot connect)."""
    current = page()
    policy = content_security_policy(current.style_hash, current.script_hashes, download_origin)
    return Response(
        body=current.html,
        status_code=200,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": policy},
    )
