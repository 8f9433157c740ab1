"""What IAM must allow for one recorded AWS call: actions, resource ARNs and the condition keys we know.

Most API operations are authorised by the IAM action of the same name
(dynamodb:GetItem, sqs:SendMessage). The exceptions below follow the service
authorization reference ("Actions, resources, and condition keys for ..."):
  - DynamoDB TransactWriteItems/TransactGetItems have no action of their own:
    each item is authorised as PutItem, UpdateItem, DeleteItem,
    ConditionCheckItem or GetItem on its own table.
  - SQS batch operations are authorised as their single forms
    (SendMessageBatch -> sqs:SendMessage, DeleteMessageBatch -> sqs:DeleteMessage).
  - S3: HeadObject is s3:GetObject; ListObjects(V2) and HeadBucket are
    s3:ListBucket on the bucket (with s3:prefix when the request has a Prefix);
    every step of a multipart upload is s3:PutObject, except its abort
    (s3:AbortMultipartUpload); a copy also needs s3:GetObject on its source.
  - A presigned URL is computed locally, but S3 honours it only while its
    signer may make the call: a presigned GetObject needs s3:GetObject.
dynamodb:LeadingKeys is the partition key value of the items a call touches
(the Key or Item of an item operation, the equality in a Query's key condition).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from tests.iam.template import DeployedTemplate, Function


@dataclass(frozen=True)
class Need:
    """One authorisation a call requires."""

    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)
    note: str = ""


class Locator:
    """One process's resource names (its environment) -> the template's resources, through the function's env.

    The function's Environment in the template says which resource each variable
    names (JOBS_TABLE_NAME: !Ref JobsTable); the dev process has the same
    variable naming its emulator copy. A name that no variable gives maps to
    nothing, and its calls are reported as calls to an unknown resource.
    """

    def __init__(self, template: DeployedTemplate, function: Function, env: dict[str, str]) -> None:
        self.template = template
        self._logical: dict[str, str] = {}
        for name, node in function.environment.items():
            logical_id = template.logical_id_of(node)
            if logical_id and env.get(name):
                self._logical[env[name]] = logical_id
                if env[name].startswith("http"):  # a queue URL also names the queue by its last segment
                    self._logical.setdefault(env[name].rstrip("/").rsplit("/", 1)[-1], logical_id)

    def logical_id(self, dev_value: str) -> str | None:
        return self._logical.get(dev_value)

    def arn(self, dev_value: str, service: str) -> str:
        logical_id = self.logical_id(dev_value)
        if logical_id is None:
            return f"unmapped:{service}:{dev_value}"
        if service == "secretsmanager":
            return str(self.template.ref(logical_id))
        return self.template.get_att(logical_id, "Arn")


def _string(value: Any) -> str | None:
    """A DynamoDB attribute value in wire form ({"S": "x"}) or plain."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return value if isinstance(value, str) else None if value is None else str(value)


# -- DynamoDB ---------------------------------------------------------------------

_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _table_arn(locator: Locator, table: str, index: str | None = None) -> str:
    arn = locator.arn(table, "dynamodb")
    return f"{arn}/index/{index}" if index and not arn.startswith("unmapped:") else arn


def _leading_keys(locator: Locator, table: str, params: dict, index: str | None = None) -> dict[str, list[str]]:
    logical_id = locator.logical_id(table)
    hash_key = locator.template.hash_key(logical_id, index) if logical_id else None
    if hash_key is None:
        return {}
    value = _string((params.get("Key") or params.get("Item") or {}).get(hash_key))
    if value is None and params.get("KeyConditionExpression"):
        value = _query_partition(params, hash_key)
    return {"dynamodb:LeadingKeys": [value]} if value is not None else {}


def _query_partition(params: dict, hash_key: str) -> str | None:
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for name, placeholder in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
        if names.get(name, name) == hash_key:
            return _string(values.get(placeholder))
    return None


def dynamodb_needs(operation: str, params: dict, locator: Locator) -> list[Need]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        needs = []
        for position, entry in enumerate(params.get("TransactItems", [])):
            kind, item = next(iter(entry.items()))
            table = item["TableName"]
            needs.append(
                Need(
                    _TRANSACT_ACTIONS[kind],
                    _table_arn(locator, table),
                    _leading_keys(locator, table, item),
                    f"{kind} {position + 1} of {operation}",
                )
            )
        return needs
    if operation in ("BatchWriteItem", "BatchGetItem"):
        tables = params.get("RequestItems", {})
        return [Need(f"dynamodb:{operation}", _table_arn(locator, table)) for table in tables]
    table, index = params.get("TableName", "*"), params.get("IndexName")
    return [
        Need(
            f"dynamodb:{operation}",
            _table_arn(locator, table, index),
            _leading_keys(locator, table, params, index),
        )
    ]


# -- SQS --------------------------------------------------------------------------

_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def sqs_needs(operation: str, params: dict, locator: Locator) -> list[Need]:
    queue = params.get("QueueUrl") or params.get("QueueName") or "*"
    if operation == "ListQueues":
        return [Need("sqs:ListQueues", "*")]
    action = _SQS_BATCH.get(operation, operation)
    note = f"as {operation}" if operation in _SQS_BATCH else ""
    return [Need(f"sqs:{action}", locator.arn(queue, "sqs"), note=note)]


# -- S3 ---------------------------------------------------------------------------

_S3_OBJECT = {
    "HeadObject": "GetObject",
    "GetObject": "GetObject",
    "PutObject": "PutObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "UploadPartCopy": "PutObject",
    "CopyObject": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload",
    "ListParts": "ListMultipartUploadParts",
    "DeleteObject": "DeleteObject",
    "GetObjectTagging": "GetObjectTagging",
    "PutObjectTagging": "PutObjectTagging",
}
_S3_BUCKET = {
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
}


def s3_needs(operation: str, params: dict, locator: Locator, presign: bool = False) -> list[Need]:
    bucket_arn = locator.arn(params.get("Bucket", "*"), "s3")
    note = "presigned URL" if presign else ""
    if operation in _S3_BUCKET:
        context = {"s3:prefix": [params["Prefix"]]} if "Prefix" in params else {}
        return [Need(f"s3:{_S3_BUCKET[operation]}", bucket_arn, context, note)]
    if operation == "DeleteObjects":
        keys = [entry["Key"] for entry in params.get("Delete", {}).get("Objects", [])]
        return [Need("s3:DeleteObject", f"{bucket_arn}/{key}", note=note) for key in keys]
    if "Key" not in params:
        return [Need(f"s3:{operation}", bucket_arn, note=note)]
    needs = [Need(f"s3:{_S3_OBJECT.get(operation, operation)}", f"{bucket_arn}/{params['Key']}", note=note)]
    if operation in ("CopyObject", "UploadPartCopy"):
        source = params["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
        else:
            source_bucket, source_key = source["Bucket"], source["Key"]
        needs.append(Need("s3:GetObject", f"{locator.arn(source_bucket, 's3')}/{source_key}", note="copy source"))
    return needs


# -- the rest ---------------------------------------------------------------------

_NO_AUTHORISATION = {("sts", "GetCallerIdentity")}  # answered for any caller


def secretsmanager_needs(operation: str, params: dict, locator: Locator) -> list[Need]:
    return [Need(f"secretsmanager:{operation}", locator.arn(params.get("SecretId", "*"), "secretsmanager"))]


_BY_SERVICE: dict[str, Callable[[str, dict, Locator], list[Need]]] = {
    "dynamodb": dynamodb_needs,
    "sqs": sqs_needs,
    "secretsmanager": secretsmanager_needs,
}


def needs_for(call: dict, locator: Locator) -> list[Need]:
    """Every authorisation one recorded call needs, in the deployed account's ARNs."""
    service, operation, params = call["service"], call["operation"], call["params"]
    if (service, operation) in _NO_AUTHORISATION:
        return []
    if service == "s3":
        return s3_needs(operation, params, locator, presign=call.get("presign", False))
    if service in _BY_SERVICE:
        return _BY_SERVICE[service](operation, params, locator)
    return [Need(f"{service}:{operation}", "*", note="no resource mapping for this service: '*'")]
