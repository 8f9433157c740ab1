"""Zip bundles streamed into S3 multipart uploads: valid, byte-identical, bounded memory, aborted on failure."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import bundles as bundle
from chalicelib.aws.bundles import READ_CHUNK, MultipartUploadWriter, write_zip_bundle

MIB = 1024 * 1024
S3_MIN_PART = 5 * MIB  # moto enforces it on every part but the last, as S3 does


@pytest.fixture
def recorded_writers(monkeypatch):
    """Every MultipartUploadWriter write_zip_bundle creates, kept for inspection."""
    writers = []

    class Recorded(MultipartUploadWriter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            writers.append(self)

    monkeypatch.setattr(bundle, "MultipartUploadWriter", Recorded)
    return writers


def put(deployed, key, body):
    deployed.s3.put_object(Bucket=deployed.bucket, Key=key, Body=body)
    return body


def members_of(deployed, key) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(deployed.read(key))) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_bundle_of_large_sources_is_a_valid_zip_of_identical_members_in_bounded_memory(deployed, recorded_writers):
    sources = {
        f"{70000 + index}.zip": put(deployed, f"downloads/{70000 + index}.zip", os.urandom(4 * MIB + index))
        for index in range(3)
    }
    members = [(name, f"downloads/{name}", len(body)) for name, body in sources.items()]

    bundle = write_zip_bundle(deployed.s3, deployed.bucket, "results/big.zip", members, part_size=S3_MIN_PART)
    size = bundle.size

    [writer] = recorded_writers
    head = deployed.s3.head_object(Bucket=deployed.bucket, Key="results/big.zip")
    assert size == head["ContentLength"] > 12 * MIB
    assert bundle.sha256 == hashlib.sha256(deployed.read("results/big.zip")).hexdigest()
    assert head["ContentType"] == "application/zip"
    assert members_of(deployed, "results/big.zip") == sources
    assert len(writer._parts) == 3
    assert writer.peak_buffer < S3_MIN_PART + READ_CHUNK
    assert writer.peak_buffer < size / 2


def test_members_are_stored_in_the_given_order_without_recompression(deployed):
    first = put(deployed, "downloads/70007.zip", b"seven" * 100)
    second = put(deployed, "downloads/70000.zip", b"zero" * 100)
    members = [("70007.zip", "downloads/70007.zip", len(first)), ("70000.zip", "downloads/70000.zip", len(second))]

    write_zip_bundle(deployed.s3, deployed.bucket, "results/small.zip", members)

    with zipfile.ZipFile(io.BytesIO(deployed.read("results/small.zip"))) as archive:
        assert archive.namelist() == ["70007.zip", "70000.zip"]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_bundle_without_members_is_an_empty_zip(deployed):
    write_zip_bundle(deployed.s3, deployed.bucket, "results/empty.zip", [])

    assert members_of(deployed, "results/empty.zip") == {}


def test_failed_bundle_aborts_its_upload_and_leaves_no_object(deployed):
    present = put(deployed, "downloads/70000.zip", b"x" * 1000)
    members = [("70000.zip", "downloads/70000.zip", len(present)), ("70003.zip", "downloads/70003.zip", 10)]

    with pytest.raises(ClientError):
        write_zip_bundle(deployed.s3, deployed.bucket, "results/broken.zip", members)

    assert deployed.result_keys() == []
    assert deployed.s3.list_multipart_uploads(Bucket=deployed.bucket).get("Uploads", []) == []


def test_writer_uploads_full_parts_as_they_fill_and_the_rest_on_complete(deployed):
    writer = MultipartUploadWriter(deployed.s3, deployed.bucket, "results/raw.bin", part_size=S3_MIN_PART)
    payload = os.urandom(11 * MIB)

    for start in range(0, len(payload), READ_CHUNK):
        writer.write(payload[start : start + READ_CHUNK])
    parts_before_complete = len(writer._parts)
    size = writer.complete().size

    assert parts_before_complete == 2
    assert size == len(payload) == writer.tell()
    assert deployed.read("results/raw.bin") == payload
    assert writer.peak_buffer < S3_MIN_PART + READ_CHUNK


def test_writer_is_a_write_only_stream(deployed):
    writer = MultipartUploadWriter(deployed.s3, deployed.bucket, "results/raw.bin")

    assert writer.writable() and not writer.seekable() and not writer.readable()
    writer.abort()
