"""The jobs table: plain items with TTL, a conditional transaction that counts a file once, the sparse active-jobs index."""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.polling import wait_until
from scripts.localstack_checks.harness import Smoke, expect


def basics(smoke: Smoke) -> str:
    ddb = smoke.client("dynamodb")
    table = smoke.outputs["JobsTableName"]
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    key = {"pk": {"S": "JOB#smoke"}, "sk": {"S": "META"}}
    ddb.put_item(TableName=table, Item={**key, "status": {"S": "queued"}})
    item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    expect(item is not None and item["status"]["S"] == "queued", f"get_item returned {item}")
    return f"put/get ok; TTL {ttl.get('TimeToLiveStatus')} on {ttl.get('AttributeName')!r}"


def transaction(smoke: Smoke) -> str:
    ddb = smoke.client("dynamodb")
    table = smoke.outputs["JobsTableName"]
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


def active_jobs_index(smoke: Smoke) -> str:
    ddb = smoke.client("dynamodb")
    table = smoke.outputs["JobsTableName"]
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
