"""Reading what `make dev` wrote to $DEV_STATE_DIR/stack.env (endpoint, credentials, resource names).

Pure functions, so a tool can decide whether to use the running dev stack
without touching os.environ (chalicelib.local.dlq keeps its own loader for now).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from chalicelib.local.processes import PROJECT_DIR


def stack_env_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("DEV_STATE_DIR") or PROJECT_DIR / ".dev") / "stack.env"


def read_stack_env(path: Path) -> dict[str, str]:
    """NAME=value lines; blank lines and `#` comments are skipped. Missing file: {}."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): value for name, _, value in pairs if name.strip()}
