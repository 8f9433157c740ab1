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

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # the floor; part_size_for grows it with the bundle
READ_CHUNK = MIB
# S3 multipart quotas (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
MAX_PARTS = 10_000  # parts per upload
MIN_PART_BYTES = 5 * MIB  # every part but the last
MAX_PART_BYTES = 5 * 1024 * MIB  # 5 GiB per part
MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MIB  # 5 TiB per object
# What the zip adds around its members, bounded from above (zipfile, ZIP_STORED, streamed):
# local header 30 + zip64 extra 20 + data descriptor 24 + central entry 46 + zip64 extra 28,
# plus the name twice (a member is named "<fileId>.zip", at most 13 characters); and once per
# archive the end record 22 + zip64 end record 56 + its locator 20.
MEMBER_OVERHEAD_BYTES = 256
ARCHIVE_OVERHEAD_BYTES = 128


class TooLargeForS3(ValueError):
    """A bundle past S3's 5 TiB object limit: no part size can upload it."""


def archive_bytes(sizes: Iterable[int]) -> int:
    """An upper bound on the size of the zip holding members of these sizes (stored, not deflated)."""
    return ARCHIVE_OVERHEAD_BYTES + sum(size + MEMBER_OVERHEAD_BYTES for size in sizes)


def part_size_for(bundle_bytes: int) -> int:
    """The part size that uploads `bundle_bytes` in at most MAX_PARTS parts: 8 MiB, or
    ceil(bytes / 10,000) rounded up to a whole MiB when that is larger (a 100 GiB bundle: 11 MiB).

    At 8 MiB a bundle past ~78 GiB would need part 10,001, which S3 refuses."""
    if bundle_bytes > MAX_OBJECT_BYTES:
        raise TooLargeForS3(f"a bundle of {bundle_bytes} bytes is past S3's 5 TiB object limit")
    needed = -(-bundle_bytes // MAX_PARTS)
    rounded = -(-needed // MIB) * MIB
    return min(max(PART_SIZE, rounded), MAX_PART_BYTES)


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
    s3: Any, bucket: str, key: str, members: Iterable[tuple[str, str, int]], part_size: int | None = None
) -> Bundle:
    """Streams each (archive name, source key, size) into a zip at `key`; returns its size and SHA-256.

    Members are stored, not deflated: the sources are zips already. The known
    size lets zipfile choose ZIP64 headers up front, which a stream requires.
    Without a `part_size`, parts are as large as the bundle needs (part_size_for).
    """
    members = list(members)
    if part_size is None:
        part_size = part_size_for(archive_bytes(size for _, _, size in members))
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
