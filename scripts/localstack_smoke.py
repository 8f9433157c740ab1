"""Smoke-check a running LocalStack against Delineate's data plane.

Deploys infra/template.yaml (the same template the cloud uses) with
CloudFormation, then exercises every AWS behaviour the service relies on:
conditional transactions, the sparse `active-jobs` index, SQS redrive to the
dead-letter queue, multipart upload and presigned GETs. Exits non-zero on
any failure. The checks live in scripts/localstack_checks/, one module per
part of the data plane; this file only orders and reports them.

    scripts/localstack.sh start
    .venv/bin/python scripts/localstack_smoke.py            # deploy, check, delete
    .venv/bin/python scripts/localstack_smoke.py --keep --stack-name delineate
                                                         # leave a stack for the app

Runs with the app's venv (boto3 + requests); talks to AWS_ENDPOINT_URL, or
http://127.0.0.1:$LOCALSTACK_PORT (default 4566), with dummy credentials.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.localstack_checks import dynamodb, resources, s3, sqs  # noqa: E402
from scripts.localstack_checks.harness import Smoke  # noqa: E402

# (name, check) in order; a failed check is reported and the rest still run.
DATA_PLANE_CHECKS = (
    ("queue URL from outputs", sqs.queue_url_format),
    ("dynamodb put/get", dynamodb.basics),
    ("dynamodb conditional transaction", dynamodb.transaction),
    ("dynamodb active-jobs GSI query", dynamodb.active_jobs_index),
    ("sqs send/receive/delete", sqs.roundtrip),
    ("sqs redrive to DLQ", sqs.redrive),
)


def default_endpoint() -> str:
    port = os.environ.get("LOCALSTACK_PORT", "4566")
    return os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=default_endpoint())
    parser.add_argument("--stack-name", default="delineate-smoke")
    parser.add_argument("--keep", action="store_true", help="leave the stack deployed and print the app env")
    args = parser.parse_args()

    smoke = Smoke(args.endpoint, args.stack_name)
    print(f"LocalStack smoke check against {args.endpoint}")
    for name, prerequisite in (("health", resources.health), ("deploy infra/template.yaml", resources.deploy)):
        if not smoke.step(name, prerequisite):
            print(f"{smoke.passed} passed, {len(smoke.failures)} failed")
            return 1
    for key, value in sorted(smoke.outputs.items()):
        print(f"     {key} = {value}")

    for name, check in DATA_PLANE_CHECKS:
        smoke.step(name, check)
    if smoke.step("s3 put + multipart upload", s3.put_and_multipart):
        smoke.step("s3 presigned GET", s3.presigned_get)

    if args.keep:
        smoke.step("clear smoke data from the kept stack", resources.clear_data)
        print("\nStack kept. Environment for the app:\n" + resources.app_env(smoke))
    else:
        smoke.step("delete stack", resources.delete_stack)

    print(smoke.summary())
    return 1 if smoke.failures else 0


if __name__ == "__main__":
    sys.exit(main())
