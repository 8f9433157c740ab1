"""S3: source availability, result bundles, presigned URLs."""

from __future__ import annotations

import time
from typing import Any, Callable, Collection, Iterable
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import metrics
from chalicelib.aws.bundles import Bundle, write_zip_bundle
from chalicelib.aws.clients import error_code
from chalicelib.caching import TimedCache
from chalicelib.metrics import Metric

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
# Objects in these classes exist (HEAD answers) but GET refuses them until restored.
_ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_RESTORED = 'ongoing-request="false"'
_HEALTH_PREFIX = "downloads/"  # models.source_key's prefix
# A signed URL is reused this long, so one served has at least its expiry minus this left.
PRESIGN_REUSE_SECONDS = 60
_PRESIGN_MEMO_SIZE = 1024
_ORIGIN_PROBE_KEY = "results/origin"  # signed, never fetched: only its URL's origin is read


class SourceUnreadable(RuntimeError):
    """A source object exists but cannot be read, so it cannot go into a bundle.

    Raised rather than recorded: a restore may be under way, so the message is
    retried, and when it keeps failing it is dead-lettered and the job fails
    with this reason.
    """


class Storage:
    def __init__(self, s3: Any, bucket: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._signed: TimedCache[tuple[str, int, str | None], str] = TimedCache(_PRESIGN_MEMO_SIZE, clock)
        self._origin: str | None = None

    def _head(self, key: str) -> dict | None:
        """HeadObject's answer, or None when the object does not exist."""
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise

    def object_size(self, key: str) -> int | None:
        """Size of the object, or None when it does not exist."""
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def readable_size(self, key: str) -> int | None:
        """Like object_size, but an object GET would refuse (archived, not restored) raises SourceUnreadable."""
        head = self._head(key)
        if head is None:
            return None
        storage_class = head.get("StorageClass", "STANDARD")
        if storage_class in _ARCHIVED and _RESTORED not in head.get("Restore", ""):
            raise SourceUnreadable(f"{key} is in {storage_class} and not restored")
        return int(head["ContentLength"])

    def presign(self, key: str, expires_in: int, filename: str | None = None) -> str:
        """A GET URL, signed locally (no AWS call). A client polling a finished job asks for the
        same URL every second; re-signing it each time is CPU on every status read, so a URL is
        reused for up to PRESIGN_REUSE_SECONDS (at most a tenth of its life) in this process."""
        memo_key = (key, expires_in, filename)
        signed = self._signed.get(memo_key)
        if signed is not None:
            return signed
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        self._signed.put(memo_key, url, min(PRESIGN_REUSE_SECONDS, expires_in / 10))
        return url

    def presign_origin(self) -> str | None:
        """scheme://host[:port] of this bucket's presigned URLs, read off one signed locally: the endpoint
        boto3 really signs for (regional virtual-hosted on AWS, the emulator's address in dev), so /app's
        CSP cannot drift from it. None when nothing can be signed (no credentials)."""
        if self._origin is None:
            try:
                url = self._s3.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": _ORIGIN_PROBE_KEY}, ExpiresIn=1
                )
            except BotoCoreError:
                return None
            parts = urlsplit(url)
            self._origin = f"{parts.scheme}://{parts.netloc}"
        return self._origin

    def write_bundle(self, key: str, members: Iterable[tuple[str, str, int]]) -> Bundle:
        bundle = write_zip_bundle(self._s3, self.bucket, key, members)
        metrics.record(Metric.BUNDLE_BYTES, bundle.size)
        return bundle

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def prune(self, prefix: str, keep: str | Collection[str]) -> list[str]:
        """Deletes every object under `prefix` but `keep` (a key, or several); returns what it deleted."""
        kept = {keep} if isinstance(keep, str) else set(keep)
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        doomed = [item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"] not in kept]
        for key in doomed:
            self.delete(key)
        return doomed

    def ping(self) -> None:
        """Lists one key under downloads/: the API's role may list only that prefix.

        HeadBucket would be simpler, but it is authorised as s3:ListBucket with
        no s3:prefix, which a prefix-limited grant (infra/chalice-overrides.yaml)
        refuses. A missing bucket still fails (NoSuchBucket).
        """
        self._s3.list_objects_v2(Bucket=self.bucket, Prefix=_HEALTH_PREFIX, MaxKeys=1)
