"""Part sizes that keep any bundle under S3's 10,000 parts, and a zip size bound the planner can trust."""

from __future__ import annotations

import io
import zipfile

import pytest

from chalicelib.aws.bundles import (
    MAX_OBJECT_BYTES,
    MAX_PART_BYTES,
    MAX_PARTS,
    MIB,
    MIN_PART_BYTES,
    PART_SIZE,
    TooLargeForS3,
    archive_bytes,
    part_size_for,
)

GIB = 1024 * MIB


@pytest.mark.parametrize("size", [0, 1, 4 * GIB, 78 * GIB])
def test_a_bundle_up_to_78_gib_keeps_8_mib_parts(size):
    assert part_size_for(size) == PART_SIZE


def test_a_larger_bundle_grows_its_part_to_a_whole_mib_past_size_over_10000():
    assert part_size_for(100 * GIB) == 11 * MIB  # 100 GiB / 10,000 = 10.24 MiB, rounded up


@pytest.mark.parametrize("size", [79 * GIB, 100 * GIB, 1024 * GIB, MAX_OBJECT_BYTES])
def test_no_bundle_up_to_s3s_largest_object_needs_more_than_10000_parts(size):
    part = part_size_for(size)

    assert -(-size // part) <= MAX_PARTS
    assert MIN_PART_BYTES <= part <= MAX_PART_BYTES and part % MIB == 0


def test_a_bundle_past_5_tib_is_refused():
    with pytest.raises(TooLargeForS3):
        part_size_for(MAX_OBJECT_BYTES + 1)


class Unseekable(io.RawIOBase):
    """Like the multipart writer: write-only and not seekable, so zipfile streams with data descriptors."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


def test_archive_bytes_bounds_a_streamed_zip_from_above():
    sizes = [0, 1, 4096, 70_000]
    out = Unseekable()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for index, size in enumerate(sizes):
            info = zipfile.ZipInfo(f"{100_000_000 - index}.zip")
            info.file_size = size
            with archive.open(info, "w") as entry:
                entry.write(b"x" * size)

    assert sum(sizes) < out.size <= archive_bytes(sizes)
