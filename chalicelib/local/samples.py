"""Sample source files: real zips of varied sizes for every multiple of 7 in [70000, 70100)."""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any

SAMPLE_FILE_IDS = tuple(range(70000, 70100, 7))
_MIN_SIZE, _MAX_SIZE = 4 * 1024, 3 * 1024 * 1024


def sample_size(file_id: int) -> int:
    """Payload sizes spread geometrically from 4 KiB to 3 MiB across the samples."""
    index = SAMPLE_FILE_IDS.index(file_id)
    fraction = index / (len(SAMPLE_FILE_IDS) - 1)
    return int(_MIN_SIZE * (_MAX_SIZE / _MIN_SIZE) ** fraction)


def sample_zip(file_id: int) -> bytes:
    """Deterministic bytes, so tests can compare a download against its source."""
    payload = random.Random(file_id).randbytes(sample_size(file_id))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(f"file-{file_id}.bin", date_time=(2025, 1, 1, 0, 0, 0))
        archive.writestr(info, payload)
    return buffer.getvalue()


def seed_samples(s3: Any, bucket: str) -> int:
    for file_id in SAMPLE_FILE_IDS:
        s3.put_object(
            Bucket=bucket, Key=f"downloads/{file_id}.zip", Body=sample_zip(file_id), ContentType="application/zip"
        )
    return len(SAMPLE_FILE_IDS)
