"""Zip bundles streamed into an S3 multipart upload with bounded memory.

zipfile writes to a non-seekable stream using data descriptors, so the bundle
is produced front to back: source objects are read in chunks, the zip bytes
are buffered up to one part (S3's minimum part is 5 MiB) and uploaded. Memory
stays at about one part plus one read chunk, whatever the bundle's size.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable

PART_SIZE = 8 * 1024 * 1024
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    """What was uploaded: its size and SHA-256, hashed as the bytes streamed past (no second read)."""

    size: int
    sha256: str


class MultipartUploadWriter(io.RawIOBase):
    """A write-only, non-seekable file object backed by an S3 multipart upload."""

    def __init__(
        self, s3: Any, bucket: str, key: str, part_size: int = PART_SIZE, extra_args: dict | None = None
    ) -> None:
        super().__init__()
        self._s3, self._bucket, self._key, self._part_size = s3, bucket, key, part_size
        self._upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **(extra_args or {}))["UploadId"]
        self._buffer = bytearray()
        self._parts: list[dict] = []
        self._position = 0
        self._digest = hashlib.sha256()
        self.peak_buffer = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._buffer += data
        self._digest.update(data)
        self._position += len(data)
        self.peak_buffer = max(self.peak_buffer, len(self._buffer))
        while len(self._buffer) >= self._part_size:
            self._upload_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]
        return len(data)

    def _upload_part(self, payload: bytes) -> None:
        number = len(self._parts) + 1
        response = self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=payload
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def complete(self) -> Bundle:
        if self._buffer or not self._parts:
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()
        self._s3.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        return Bundle(self._position, self._digest.hexdigest())

    def abort(self) -> None:
        self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)


def write_zip_bundle(
    s3: Any, bucket: str, key: str, members: Iterable[tuple[str, str, int]], part_size: int = PART_SIZE
) -> Bundle:
    """Streams each (archive name, source key, size) into a zip at `key`; returns its size and SHA-256.

    Members are stored, not deflated: the sources are zips already. The known
    size lets zipfile choose ZIP64 headers up front, which a stream requires.
    """
    writer = MultipartUploadWriter(s3, bucket, key, part_size, {"ContentType": "application/zip"})
    try:
        with zipfile.ZipFile(writer, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, source_key, size in members:
                body = s3.get_object(Bucket=bucket, Key=source_key)["Body"]
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_STORED
                info.file_size = size
                with archive.open(info, mode="w") as entry:
                    for chunk in body.iter_chunks(READ_CHUNK):
                        entry.write(chunk)
        return writer.complete()
    except BaseException:
        writer.abort()
        raise
