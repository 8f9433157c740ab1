"""The public reason a job fails with when one of its messages gives up: a fixed sentence per kind
of failure, since it is served unauthenticated (the exception itself goes to the log only)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.aws.queue import MessageKind, WorkMessage
from chalicelib.aws.storage import SourceUnreadable


def failure_reason(message: WorkMessage, receives: int, exc: Exception) -> str:
    """The job's public `error` when a message gives up: one fixed sentence per kind of failure."""
    if message.kind is MessageKind.FILE:
        if isinstance(exc, SourceUnreadable):
            return f"file {message.file_id} is archived and could not be read after {receives} attempts"
        if _is_storage_error(exc):
            return f"file {message.file_id} could not be read from storage after {receives} attempts"
        return f"file {message.file_id} could not be prepared after {receives} attempts"
    if message.kind is MessageKind.JOB:
        return f"the job could not be started after {receives} attempts"
    if message.volume is not None:
        return f"volume {message.volume} of the bundle could not be built after {receives} attempts"
    return f"the bundle could not be built after {receives} attempts"


def _is_storage_error(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and exc.operation_name in _STORAGE_READS


_STORAGE_READS = frozenset({"HeadObject", "GetObject"})
