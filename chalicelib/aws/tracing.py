"""X-Ray tracing: boto3 calls are traced and one trace follows a job through SQS.

The API's trace header travels inside each work message (`trace` in the body:
SendMessageBatch system attributes are not carried by every emulator), and
the worker continues it, so one trace shows initiate -> fan-out -> each file
-> bundle, annotated with jobId and fileId. Inside Lambda the SDK owns the
segment (active tracing, `"xray": true`), so we add subsegments; in local
processes we open segments ourselves. With no daemon, AWS_XRAY_CONTEXT_MISSING
=IGNORE_ERROR keeps it silent; AWS_XRAY_SDK_ENABLED=false turns it off.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import patch, xray_recorder
from aws_xray_sdk.core.models.trace_header import TraceHeader

_patched = False


def enabled() -> bool:
    return global_sdk_config.sdk_enabled()


def configure() -> None:
    """Idempotent; call before the first boto3 client is built."""
    global _patched
    if _patched or not enabled():
        return
    os.environ.setdefault("AWS_XRAY_CONTEXT_MISSING", "IGNORE_ERROR")
    xray_recorder.configure(
        service="delineate",
        context_missing=os.environ["AWS_XRAY_CONTEXT_MISSING"],
        sampling=False,
        streaming_threshold=100,
    )
    patch(["boto3"])
    # The SDK warns on every AWS call made outside a segment (a consumer's
    # long polls, for one): noise, not news.
    logging.getLogger("aws_xray_sdk").setLevel(logging.ERROR)
    _patched = True


def _in_lambda() -> bool:
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


@contextmanager
def traced(name: str, trace_header: str | None = None, **annotations: Any) -> Iterator[None]:
    """A segment continuing `trace_header` (local) or a subsegment of Lambda's segment."""
    if not enabled():
        yield
        return
    if _in_lambda():
        subsegment = xray_recorder.begin_subsegment(name)
        _annotate(subsegment, annotations)
        try:
            yield
        finally:
            xray_recorder.end_subsegment()
        return
    header = TraceHeader.from_header_str(trace_header) if trace_header else TraceHeader()
    segment = xray_recorder.begin_segment(name, traceid=header.root, parent_id=header.parent, sampling=1)
    _annotate(segment, annotations)
    try:
        yield
    finally:
        xray_recorder.end_segment()


def _annotate(entity: Any, annotations: dict[str, Any]) -> None:
    if entity is None:
        return
    for key, value in annotations.items():
        if value is not None:
            entity.put_annotation(key, value)


def annotate(**annotations: Any) -> None:
    """Adds annotations (e.g. jobId) to whatever segment or subsegment is open."""
    if enabled():
        _annotate(xray_recorder.get_trace_entity(), annotations)


def current_header() -> str | None:
    """`Root=...;Parent=...;Sampled=1` of the open segment/subsegment, to hand downstream."""
    if not enabled():
        return None
    entity = xray_recorder.get_trace_entity()
    if entity is None or not getattr(entity, "trace_id", None):
        return None
    return TraceHeader(root=entity.trace_id, parent=entity.id, sampled=1).to_header_str()
