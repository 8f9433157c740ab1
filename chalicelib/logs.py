"""Structured logs: one JSON line per event from every function and local process.

Modules keep plain `logging.getLogger("delineate.<part>")` loggers; this module
gives the "delineate" logger Powertools' JSON formatter once, so `extra=` keys
(requestId, jobId, fileId, durationMs) become fields. Quiet by default
(WARNING); LOG_LEVEL changes it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

_configured = False


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (Lambda ships stdout; tests capture it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(level: str | None = None) -> logging.Logger:
    global _configured
    root = logging.getLogger("delineate")
    if not _configured:
        handler = _StdoutHandler()
        handler.setFormatter(LambdaPowertoolsFormatter(service="delineate"))
        root.addHandler(handler)
        root.propagate = False  # Lambda's and chalice local's root handlers would print it twice
        _configured = True
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "WARNING").upper())
    return root
