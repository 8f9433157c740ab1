"""Smoke-check a running LocalStack against Delineate's data plane.

Deploys infra/template.yaml (the same template the cloud uses) with
CloudFormation, then exercises every AWS behaviour the service relies on:
conditional transactions, the sparse `active-jobs` index, SQS redrive to the
dead-letter queue, multipart upload and presigned GETs. Exits non-zero on
any failure.

    scripts/localstack.sh start
    .venv/bin/python scripts/localstack_smoke.py            # deploy, check, delete
    .venv/bin/python scripts/localstack_smoke.py --keep --stack-name delineate
                                                         # leave a stack for the app

Runs with the app's venv (boto3 + requests); talks to AWS_ENDPOINT_URL, or
http://127.0.0.1:$LOCALSTACK_PORT (default 4566), with dummy credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import boto3
import localstack_client.session
import requests
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from chalicelib.polling import wait_until  # noqa: E402

TEMPLATE = REPO / "infra" / "template.yaml"
REGION = "us-east-1"
# LocalStack ignores secrets; "test" is its documented dummy value. Passed to
# clients explicitly so a developer's real credentials are never picked up.
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
MIB = 1024 * 1024


def default_endpoint() -> str:
    port = os.environ.get("LOCALSTACK_PORT", "4566")
    return os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{port}"


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Smoke:
    def __init__(self, endpoint: str, stack_name: str):
        self.endpoint = endpoint
        self.stack_name = stack_name
        # localstack-client maps every service to the LocalStack gateway, so the
        # checks cannot reach a real AWS endpoint by accident.
        self.session = localstack_client.session.Session(
            region_name=REGION, localstack_host=urlparse(endpoint).netloc, **CREDENTIALS
        )
        self.outputs: dict[str, str] = {}
        self.failures: list[str] = []
        self.passed = 0
        self.timings: dict[str, float] = {}
        self._multipart_bytes = b""

    def client(self, service: str, **kwargs):
        return self.session.client(service, **kwargs)

    def step(self, name: str, fn: Callable[[], str | None]) -> bool:
        started = time.monotonic()
        try:
            note = fn()
        except Exception as exc:  # report every failing step, then exit non-zero
            self.failures.append(name)
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            if not isinstance(exc, (AssertionError, TimeoutError)):
                traceback.print_exc(limit=3)
            return False
        elapsed = time.monotonic() - started
        self.timings[name] = elapsed
        self.passed += 1
        print(f"ok   {name} ({elapsed:.2f}s){': ' + note if note else ''}")
        return True

    # ------------------------------------------------------------ stack ---

    def health(self) -> str:
        try:
            body = requests.get(f"{self.endpoint}/_localstack/health", timeout=5).json()
        except requests.ConnectionError:
            raise AssertionError(f"nothing answers on {self.endpoint}: run scripts/localstack.sh start") from None
        services = body.get("services", {})
        needed = ("s3", "sqs", "dynamodb", "cloudformation")
        down = {s: services.get(s) for s in needed if services.get(s) not in ("available", "running")}
        expect(not down, f"services not up: {down}")
        return f"LocalStack {body.get('version')}"

    def deploy(self) -> str:
        cfn = self.client("cloudformation")
        self._delete_stack_if_present(cfn)
        cfn.create_stack(StackName=self.stack_name, TemplateBody=TEMPLATE.read_text())

        def finished():
            stack = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
            return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

        stack = wait_until(finished, timeout=120, interval=0.5, what="stack creation")
        if stack["StackStatus"] != "CREATE_COMPLETE":
            events = cfn.describe_stack_events(StackName=self.stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                for e in events
                if "FAILED" in e["ResourceStatus"]
            ]
            raise AssertionError(f"{stack['StackStatus']}: {reasons}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        wanted = {
            "JobsTableName",
            "JobsTableArn",
            "WorkQueueUrl",
            "WorkQueueArn",
            "WorkQueueName",
            "DeadLetterQueueUrl",
            "DeadLetterQueueArn",
            "BucketName",
        }
        expect(wanted <= self.outputs.keys(), f"missing outputs: {wanted - self.outputs.keys()}")
        return f"stack {self.stack_name} CREATE_COMPLETE"

    def _delete_stack_if_present(self, cfn) -> None:
        try:
            cfn.describe_stacks(StackName=self.stack_name)
        except ClientError:
            return
        self.delete_stack()

    def delete_stack(self) -> str:
        cfn = self.client("cloudformation")
        bucket = self.outputs.get("BucketName") or self._stack_bucket(cfn)
        if bucket:
            self._empty_bucket(bucket)  # CloudFormation refuses to delete a non-empty bucket
        cfn.delete_stack(StackName=self.stack_name)

        def gone():
            try:
                stacks = cfn.describe_stacks(StackName=self.stack_name)["Stacks"]
            except ClientError:
                return True
            return not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE"

        wait_until(gone, timeout=60, interval=0.5, what="stack deletion")
        return f"stack {self.stack_name} deleted"

    def _stack_bucket(self, cfn) -> str | None:
        resources = cfn.describe_stack_resources(StackName=self.stack_name)["StackResources"]
        for resource in resources:
            if resource["ResourceType"] == "AWS::S3::Bucket":
                return resource.get("PhysicalResourceId")
        return None

    def _empty_bucket(self, bucket: str) -> None:
        s3 = self.client("s3")
        try:
            for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchBucket":
                raise

    # --------------------------------------------------------- dynamodb ---

    def dynamodb_basics(self) -> str:
        ddb = self.client("dynamodb")
        table = self.outputs["JobsTableName"]
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        key = {"pk": {"S": "JOB#smoke"}, "sk": {"S": "META"}}
        ddb.put_item(TableName=table, Item={**key, "status": {"S": "queued"}})
        item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        expect(item is not None and item["status"]["S"] == "queued", f"get_item returned {item}")
        return f"put/get ok; TTL {ttl.get('TimeToLiveStatus')} on {ttl.get('AttributeName')!r}"

    def dynamodb_transaction(self) -> str:
        ddb = self.client("dynamodb")
        table = self.outputs["JobsTableName"]
        job = {"pk": {"S": "JOB#tx"}, "sk": {"S": "META"}}
        file_ = {"pk": {"S": "JOB#tx"}, "sk": {"S": "FILE#10001"}}

        def claim_file() -> None:
            # Mark the file done and count it on the job, atomically, only once.
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {**file_, "status": {"S": "available"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": table,
                            "Key": job,
                            "UpdateExpression": "ADD completedFiles :one",
                            "ConditionExpression": "#s IN (:queued, :processing)",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {
                                ":one": {"N": "1"},
                                ":queued": {"S": "queued"},
                                ":processing": {"S": "processing"},
                            },
                        }
                    },
                ]
            )

        ddb.put_item(TableName=table, Item={**job, "status": {"S": "processing"}})
        claim_file()
        try:
            claim_file()  # a redelivery: the condition must cancel the whole transaction
        except ClientError as exc:
            expect(
                exc.response["Error"]["Code"] == "TransactionCanceledException",
                f"unexpected error {exc.response['Error']}",
            )
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            expect(reasons[:1] == ["ConditionalCheckFailed"], f"cancellation reasons {reasons}")
        else:
            raise AssertionError("second transaction was not cancelled by its condition")
        count = ddb.get_item(TableName=table, Key=job, ConsistentRead=True)["Item"]["completedFiles"]
        expect(count == {"N": "1"}, f"completedFiles is {count}, want 1 (no double count)")
        return f"conditional transaction counted once; retry cancelled with {reasons}"

    def dynamodb_gsi(self) -> str:
        ddb = self.client("dynamodb")
        table = self.outputs["JobsTableName"]
        for n, active in ((1, "1"), (2, "1"), (3, None)):
            item = {
                "pk": {"S": f"JOB#gsi{n}"},
                "sk": {"S": "META"},
                "updatedAt": {"S": f"2026-01-01T00:00:0{n}Z"},
            }
            # Terminal jobs drop `active`, so the index stays sparse.
            if active:
                item["active"] = {"S": active}
            ddb.put_item(TableName=table, Item=item)

        def stalled():
            items = ddb.query(
                TableName=table,
                IndexName="active-jobs",
                KeyConditionExpression="active = :a AND updatedAt < :cutoff",
                ExpressionAttributeValues={":a": {"S": "1"}, ":cutoff": {"S": "2026-01-02"}},
            )["Items"]
            pks = sorted(i["pk"]["S"] for i in items)
            return pks if pks == ["JOB#gsi1", "JOB#gsi2"] else None

        # GSIs are eventually consistent on AWS: poll rather than read once.
        pks = wait_until(stalled, timeout=10, what="active-jobs index")
        return f"active-jobs query -> {pks}"

    # -------------------------------------------------------------- sqs ---

    def queue_url_format(self) -> str:
        url = self.outputs["WorkQueueUrl"]
        parsed = urlparse(url)
        # The stack output must be usable as-is by an SDK pointed at the endpoint.
        via_env = self._client_from_env("sqs")
        attrs = via_env.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        expect(attrs["QueueArn"] == self.outputs["WorkQueueArn"], f"ARN mismatch: {attrs}")
        return f"{url} (host {parsed.netloc}); works with AWS_ENDPOINT_URL={self.endpoint}"

    def _client_from_env(self, service: str):
        """A client configured the way the app configures one: only AWS_ENDPOINT_URL in the env."""
        saved = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        try:
            return boto3.session.Session(region_name=REGION, **CREDENTIALS).client(service)
        finally:
            if saved is None:
                del os.environ["AWS_ENDPOINT_URL"]
            else:
                os.environ["AWS_ENDPOINT_URL"] = saved

    def sqs_roundtrip(self) -> str:
        sqs = self.client("sqs")
        url = self.outputs["WorkQueueUrl"]
        body = f"smoke-{uuid.uuid4()}"
        sqs.send_message(QueueUrl=url, MessageBody=body)
        messages = wait_until(
            lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"),
            timeout=10,
            what="the sent message",
        )
        expect(messages[0]["Body"] == body, f"received {messages[0]['Body']!r}")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        left = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        expect(left == 0, f"{left} messages left after delete")
        return f"send/receive/delete ok; VisibilityTimeout={attrs['VisibilityTimeout']}"

    def sqs_redrive(self) -> str:
        sqs = self.client("sqs")
        url, dlq = self.outputs["WorkQueueUrl"], self.outputs["DeadLetterQueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
        policy = json.loads(attrs["RedrivePolicy"])
        expect(policy["deadLetterTargetArn"] == self.outputs["DeadLetterQueueArn"], f"policy {policy}")
        max_receives = int(policy["maxReceiveCount"])
        body = f"poison-{uuid.uuid4()}"
        sqs.send_message(QueueUrl=url, MessageBody=body)
        for attempt in range(1, max_receives + 1):
            # VisibilityTimeout=0 hands the message straight back, like a consumer
            # that fails without deleting it; each receive still counts.
            got = wait_until(
                lambda: sqs.receive_message(
                    QueueUrl=url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"]
                ).get("Messages"),
                timeout=10,
                what=f"receive #{attempt}",
            )
            expect(got[0]["Body"] == body, f"unexpected message {got[0]['Body']!r}")
        # The next receive finds the count exhausted and moves it to the DLQ.
        extra = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        expect(not extra, f"message delivered a {max_receives + 1}th time")
        moved = wait_until(
            lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"),
            timeout=10,
            what="the message in the dead-letter queue",
        )
        expect(moved[0]["Body"] == body, f"DLQ holds {moved[0]['Body']!r}")
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=moved[0]["ReceiptHandle"])
        return f"moved to DLQ after {max_receives} receives (maxReceiveCount={max_receives})"

    # --------------------------------------------------------------- s3 ---

    def s3_put_and_multipart(self) -> str:
        s3 = self.client("s3")
        bucket = self.outputs["BucketName"]
        s3.put_object(Bucket=bucket, Key="downloads/10001.zip", Body=b"source file")
        head = s3.head_object(Bucket=bucket, Key="downloads/10001.zip")
        expect(head["ContentLength"] == 11, f"head {head['ContentLength']}")

        # S3 requires every part but the last to be >= 5 MiB.
        parts_data = [os.urandom(5 * MIB), os.urandom(MIB // 2)]
        key = "results/smoke.zip"
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/zip")
        parts = []
        for number, data in enumerate(parts_data, start=1):
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data)[
                "ETag"
            ]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        expect(got == b"".join(parts_data), "multipart object differs from its parts")
        self._multipart_bytes = got
        return f"put + head ok; multipart {len(got)} bytes in {len(parts)} parts"

    def s3_presigned_get(self) -> str:
        s3 = self.client("s3")
        bucket, key = self.outputs["BucketName"], "results/smoke.zip"
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)
        response = requests.get(url, timeout=10)
        expect(
            response.status_code == 200,
            f"presigned GET {response.status_code}: {response.text[:200]}",
        )
        expect(response.content == self._multipart_bytes, "presigned GET returned other bytes")
        # Informational: does LocalStack check the signature? (AWS would answer 403.)
        tampered = requests.get(url.replace("Signature=", "Signature=0"), timeout=10)
        checked = "validated" if tampered.status_code == 403 else f"NOT validated (tampered -> {tampered.status_code})"
        parsed = urlparse(url)
        return f"{parsed.netloc}{parsed.path} -> {len(response.content)} bytes; signature {checked}"

    def clear_data(self) -> str:
        """Leave a kept stack empty: the smoke jobs would look stalled to the app's sweeper."""
        ddb, sqs = self.client("dynamodb"), self.client("sqs")
        table = self.outputs["JobsTableName"]
        deleted = 0
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
            for key in page["Items"]:
                ddb.delete_item(TableName=table, Key=key)
                deleted += 1
        self._empty_bucket(self.outputs["BucketName"])
        for url in (self.outputs["WorkQueueUrl"], self.outputs["DeadLetterQueueUrl"]):
            sqs.purge_queue(QueueUrl=url)
        return f"removed {deleted} items, the bucket's objects and queued messages"

    # -------------------------------------------------------------- run ---

    def app_env(self) -> str:
        o = self.outputs
        return "\n".join(
            [
                f"export AWS_ENDPOINT_URL={self.endpoint}",
                f"export AWS_DEFAULT_REGION={REGION}",
                "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
                f"export JOBS_TABLE_NAME={o['JobsTableName']}",
                f"export WORK_QUEUE_URL={o['WorkQueueUrl']}",
                f"export DEAD_LETTER_QUEUE_URL={o['DeadLetterQueueUrl']}",
                f"export S3_BUCKET_NAME={o['BucketName']}",
            ]
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=default_endpoint())
    parser.add_argument("--stack-name", default="delineate-smoke")
    parser.add_argument("--keep", action="store_true", help="leave the stack deployed and print the app env")
    args = parser.parse_args()

    smoke = Smoke(args.endpoint, args.stack_name)
    print(f"LocalStack smoke check against {args.endpoint}")
    for name, prerequisite in (
        ("health", smoke.health),
        ("deploy infra/template.yaml", smoke.deploy),
    ):
        if not smoke.step(name, prerequisite):
            print(f"{smoke.passed} passed, {len(smoke.failures)} failed")
            return 1
    for key, value in sorted(smoke.outputs.items()):
        print(f"     {key} = {value}")

    smoke.step("queue URL from outputs", smoke.queue_url_format)
    smoke.step("dynamodb put/get", smoke.dynamodb_basics)
    smoke.step("dynamodb conditional transaction", smoke.dynamodb_transaction)
    smoke.step("dynamodb active-jobs GSI query", smoke.dynamodb_gsi)
    smoke.step("sqs send/receive/delete", smoke.sqs_roundtrip)
    smoke.step("sqs redrive to DLQ", smoke.sqs_redrive)
    if smoke.step("s3 put + multipart upload", smoke.s3_put_and_multipart):
        smoke.step("s3 presigned GET", smoke.s3_presigned_get)

    if args.keep:
        smoke.step("clear smoke data from the kept stack", smoke.clear_data)
        print("\nStack kept. Environment for the app:\n" + smoke.app_env())
    else:
        smoke.step("delete stack", smoke.delete_stack)

    print("timings: " + ", ".join(f"{k}={v:.1f}s" for k, v in smoke.timings.items() if v >= 0.5))
    print(f"{smoke.passed} passed, {len(smoke.failures)} failed")
    return 1 if smoke.failures else 0


if __name__ == "__main__":
    sys.exit(main())
