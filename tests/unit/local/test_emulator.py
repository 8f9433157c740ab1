"""The embedded emulator over real HTTP: a failed transaction puts back exactly the items it touched;
a long poll returns a delayed message as soon as it is due."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib.local.bootstrap import TEMPLATE_PATH
from chalicelib.local.processes import env_with_pythonpath, free_port, python_module, spawn, stop_all
from chalicelib.polling import wait_until

TABLE = "emulator-test"


def _up(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tmp_path_factory.mktemp("emulator")) / "emulator.log"
    env = env_with_pythonpath({**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    process = spawn(python_module("chalicelib.local.emulator", "-H", "127.0.0.1", "-p", str(port)), env, log)
    try:
        wait_until(lambda: _up(url), timeout=30, what="the emulator")
        yield url
    finally:
        stop_all([process])


def _client(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture(scope="module")
def dynamodb(endpoint: str) -> Iterator:
    client = _client("dynamodb", endpoint)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client


def _key(pk: str, sk: str = "JOB") -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _item(client, pk: str, sk: str = "JOB") -> dict | None:
    return client.get_item(TableName=TABLE, Key=_key(pk, sk), ConsistentRead=True).get("Item")


def _put(client, pk: str, sk: str = "JOB", **attrs: int) -> None:
    item = {**_key(pk, sk), **{name: {"N": str(value)} for name, value in attrs.items()}}
    client.put_item(TableName=TABLE, Item=item)


def _add(pk: str, sk: str = "JOB") -> dict:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": _key(pk, sk),
            "UpdateExpression": "ADD done :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def _must_not_exist(pk: str, sk: str = "JOB") -> dict:
    return {
        "ConditionCheck": {"TableName": TABLE, "Key": _key(pk, sk), "ConditionExpression": "attribute_not_exists(pk)"}
    }


def test_a_cancelled_transaction_restores_updated_created_and_deleted_items(dynamodb):
    _put(dynamodb, "A", done=1)
    _put(dynamodb, "D", done=7)
    _put(dynamodb, "GUARD")
    writes = [
        _add("A"),
        {"Put": {"TableName": TABLE, "Item": {**_key("A", "FILE#1"), "done": {"N": "1"}}}},
        {"Delete": {"TableName": TABLE, "Key": _key("D")}},
        _must_not_exist("GUARD"),
    ]
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=writes)
    reasons = [reason["Code"] for reason in caught.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _item(dynamodb, "A")["done"] == {"N": "1"}
    assert _item(dynamodb, "A", "FILE#1") is None
    assert _item(dynamodb, "D")["done"] == {"N": "7"}


def test_a_cancelled_transaction_leaves_the_items_it_did_not_touch(dynamodb):
    _put(dynamodb, "B", done=1)
    _put(dynamodb, "C", done=1)
    _put(dynamodb, "OTHER", done=5)
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[_add("B"), _must_not_exist("C")])
    assert _item(dynamodb, "OTHER")["done"] == {"N": "5"}
    assert _item(dynamodb, "B")["done"] == {"N": "1"}


def test_a_successful_transaction_writes_every_item(dynamodb):
    _put(dynamodb, "E", done=1)
    dynamodb.transact_write_items(TransactItems=[_add("E"), _add("E", "FILE#2"), _must_not_exist("NEW")])
    assert _item(dynamodb, "E")["done"] == {"N": "2"}
    assert _item(dynamodb, "E", "FILE#2")["done"] == {"N": "1"}


def test_an_invalid_transaction_writes_nothing(dynamodb):
    _put(dynamodb, "F", done=1)
    twice = [_add("F"), _add("F")]  # two operations on one item: a ValidationException
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=twice)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert _item(dynamodb, "F")["done"] == {"N": "1"}


def test_a_long_poll_returns_a_delayed_message_as_soon_as_it_is_due(endpoint):
    """moto's own long poll rechecks once a second, so this message came up to a second late."""
    sqs = _client("sqs", endpoint)
    queue_url = sqs.create_queue(QueueName="emulator-delays")["QueueUrl"]
    sent = time.monotonic()
    sqs.send_message(QueueUrl=queue_url, MessageBody="due in 2 s", DelaySeconds=2)
    time.sleep(0.5)  # the scenario, not a synchronisation: the poll starts half-way through a second

    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5).get("Messages", [])

    assert [message["Body"] for message in messages] == ["due in 2 s"]
    assert 2.0 <= time.monotonic() - sent < 2.3


PAGE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def zip_url(endpoint: str) -> str:
    """A presigned GET of an object in the bucket of infra/template.yaml, deployed as `make dev` does."""
    cloudformation = _client("cloudformation", endpoint)
    cloudformation.create_stack(
        StackName="emulator-cors",
        TemplateBody=TEMPLATE_PATH.read_text(),
        Parameters=[{"ParameterKey": "DownloadPageOrigins", "ParameterValue": f"{PAGE},http://localhost:8000"}],
    )
    (stack,) = cloudformation.describe_stacks(StackName="emulator-cors")["Stacks"]  # moto creates it at once
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    bucket = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "BucketName")
    s3 = _client("s3", endpoint)
    s3.put_object(Bucket=bucket, Key="results/job/bundle.zip", Body=b"zip bytes")
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "results/job/bundle.zip"})


def test_the_bucket_lets_the_page_read_a_zip_cross_origin(zip_url):
    preflight = requests.options(zip_url, headers={"Origin": PAGE, "Access-Control-Request-Method": "GET"}, timeout=5)
    answer = requests.get(zip_url, headers={"Origin": PAGE}, timeout=5)

    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == PAGE
    assert answer.content == b"zip bytes" and answer.headers["Access-Control-Allow-Origin"] == PAGE


def test_another_origin_gets_no_cors_answer_as_from_s3(zip_url):
    """moto's server-wide flask-cors would answer any origin; the emulator leaves CORS to the bucket's rules."""
    other = "https://elsewhere.example"
    preflight = requests.options(zip_url, headers={"Origin": other, "Access-Control-Request-Method": "GET"}, timeout=5)
    answer = requests.get(zip_url, headers={"Origin": other}, timeout=5)

    assert preflight.status_code == 403 and "Access-Control-Allow-Origin" not in preflight.headers
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
