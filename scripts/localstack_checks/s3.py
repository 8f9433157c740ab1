"""The storage bucket: put + head, a multipart bundle upload, and a presigned GET of the bundle."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import requests

from scripts.localstack_checks.harness import Smoke, expect

MIB = 1024 * 1024
BUNDLE_KEY = "results/smoke.zip"


def put_and_multipart(smoke: Smoke) -> str:
    s3 = smoke.client("s3")
    bucket = smoke.outputs["BucketName"]
    s3.put_object(Bucket=bucket, Key="downloads/10001.zip", Body=b"source file")
    head = s3.head_object(Bucket=bucket, Key="downloads/10001.zip")
    expect(head["ContentLength"] == 11, f"head {head['ContentLength']}")

    # S3 requires every part but the last to be >= 5 MiB.
    parts_data = [os.urandom(5 * MIB), os.urandom(MIB // 2)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=BUNDLE_KEY, ContentType="application/zip")
    parts = []
    for number, data in enumerate(parts_data, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=BUNDLE_KEY, UploadId=upload["UploadId"], PartNumber=number, Body=data)[
            "ETag"
        ]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=BUNDLE_KEY, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    got = s3.get_object(Bucket=bucket, Key=BUNDLE_KEY)["Body"].read()
    expect(got == b"".join(parts_data), "multipart object differs from its parts")
    smoke.multipart_bytes = got
    return f"put + head ok; multipart {len(got)} bytes in {len(parts)} parts"


def presigned_get(smoke: Smoke) -> str:
    s3 = smoke.client("s3")
    bucket = smoke.outputs["BucketName"]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": BUNDLE_KEY}, ExpiresIn=900)
    response = requests.get(url, timeout=10)
    expect(
        response.status_code == 200,
        f"presigned GET {response.status_code}: {response.text[:200]}",
    )
    expect(response.content == smoke.multipart_bytes, "presigned GET returned other bytes")
    # Informational: does LocalStack check the signature? (AWS would answer 403.)
    tampered = requests.get(url.replace("Signature=", "Signature=0"), timeout=10)
    checked = "validated" if tampered.status_code == 403 else f"NOT validated (tampered -> {tampered.status_code})"
    parsed = urlparse(url)
    return f"{parsed.netloc}{parsed.path} -> {len(response.content)} bytes; signature {checked}"
