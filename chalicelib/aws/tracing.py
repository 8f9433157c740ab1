"""X-Ray tracing: boto3 calls are traced and one trace follows a job through SQS.

The API's trace header travels inside each work message (`trace` in the body:
SendMessageBatch system attributes are not carried by every emulator), and
the worker continues it, so one trace shows initiate -> fan-out -> each file
-> bundle, annotated with jobId and fileId. Inside Lambda the SDK owns the
segment (active tracing, `"xray": true`), so we add subsegments; in local
processes we open segments ourselves.

Tracing is on when there is a daemon to send segments to: Lambda sets
AWS_XRAY_DAEMON_ADDRESS when active tracing is on, the dev stack when asked to.
AWS_XRAY_SDK_ENABLED=true turns it on anyway (segments go to 127.0.0.1:2000),
=false turns it off. Only then is the SDK imported: `aws_xray_sdk.core` builds a
botocore session and an X-Ray client at import (~0.15 s), a cold start's worth
of work for nothing when no segment will be sent.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

_patched = False


def enabled() -> bool:
    """Read from the environment each time, as the SDK reads AWS_XRAY_SDK_ENABLED (tests flip it)."""
    flag = os.environ.get("AWS_XRAY_SDK_ENABLED", "").strip().lower()
    if flag == "false":
        return False
    return flag == "true" or bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS"))


def _recorder() -> Any:
    """The SDK's recorder: import it only once enabled() said yes."""
    from aws_xray_sdk.core import xray_recorder

    return xray_recorder


def configure() -> None:
    """Idempotent; call before the first boto3 client is built."""
    global _patched
    if _patched or not enabled():
        return
    from aws_xray_sdk.core import patch

    os.environ.setdefault("AWS_XRAY_CONTEXT_MISSING", "IGNORE_ERROR")
    _recorder().configure(
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
    xray_recorder = _recorder()
    if _in_lambda():
        subsegment = xray_recorder.begin_subsegment(name)
        _annotate(subsegment, annotations)
        try:
            yield
        finally:
            xray_recorder.end_subsegment()
        return
    from aws_xray_sdk.core.models.trace_header import TraceHeader

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
        _annotate(_recorder().get_trace_entity(), annotations)


def current_header() -> str | None:
    """`Root=...;Parent=...;Sampled=1` of the open segment/subsegment, to hand downstream."""
    if not enabled():
        return None
    from aws_xray_sdk.core.models.trace_header import TraceHeader

    entity = _recorder().get_trace_entity()
    if entity is None or not getattr(entity, "trace_id", None):
        return None
    return TraceHeader(root=entity.trace_id, parent=entity.id, sampled=1).to_header_str()
