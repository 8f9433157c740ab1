"""Every Lambda entry point of the packaged zip, run as Lambda runs it, with events shaped as AWS sends them.

Given build/prod/deployment.zip unpacked read-only and each function in a fresh
interpreter that can import only the zip (boto3 included), against the embedded
emulator holding the template's resources.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.polling import wait_until
from tests.artifact.events import api_event, header, json_body, scheduled_event, sqs_event
from tests.support.aws import drain, put_source, receive_records, sqs_record

FILES = [81000, 81007]


def keyed(api_key: str, **headers: list[str]) -> dict[str, list[str]]:
    return {"X-API-Key": [api_key], **headers}


def initiate(functions, api_key: str, file_ids: list[int], source_ip: str = "203.0.113.7") -> dict:
    body = json.dumps({"file_ids": file_ids}).encode()
    headers = keyed(api_key, **{"Content-Type": ["application/json"]})
    event = api_event("POST", "/v1/download/initiate", headers=headers, body=body, source_ip=source_ip)
    return functions["app.app"].result(event)


def job_item(emulator, stack, job_id: str) -> dict | None:
    table = stack.outputs["JobsTableName"]
    key = {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    return emulator.client("dynamodb").get_item(TableName=table, Key=key).get("Item")


def kinds(records: list[dict]) -> list[str]:
    return sorted(json.loads(record["body"])["kind"] for record in records)


def receive_all(queue_url: str, expected: int) -> list[dict]:
    """Receives until `expected` messages are held (a receive may return fewer than are waiting)."""
    held: list[dict] = []

    def enough() -> list[dict] | None:
        held.extend(receive_records(queue_url))
        return held if len(held) >= expected else None

    return wait_until(enough, timeout=20, interval=0.1, what=f"{expected} messages on the work queue")


def test_the_zip_runs_on_its_own_boto3_and_no_site_packages(functions, code_dir):
    # The API function's interpreter was given only the zip: a GET / answers, and the handler ran.
    answer = functions["app.app"].result(api_event("GET", "/"))

    assert answer["statusCode"] == 200
    assert json_body(answer)["service"] == "delineate"


def test_every_packaged_function_has_a_handler_that_imports(functions, stack):
    assert set(functions) == {"app.app", "app.process_work", "app.sweep_stalled_jobs"}
    assert set(stack.handlers()) == {"APIHandler", "ProcessWork", "SweepStalledJobs"}


def test_initiate_with_a_base64_body_writes_the_job_and_queues_its_message(functions, api_key, emulator, stack):
    answer = initiate(functions, api_key, FILES)

    assert answer["statusCode"] == 202, answer
    accepted = json_body(answer)
    assert header(answer, "Location") == accepted["statusUrl"]
    assert header(answer, "RateLimit-Limit") == "100"  # the limiter counted this key
    item = job_item(emulator, stack, accepted["jobId"])
    assert item is not None and item["status"]["S"] == "queued"
    records = receive_all(stack.outputs["WorkQueueUrl"], 1)
    assert [json.loads(record["body"])["jobId"] for record in records] == [accepted["jobId"]]
    assert kinds(records) == ["job"]


def test_a_request_without_a_key_is_refused_in_our_error_shape(functions):
    answer = functions["app.app"].result(api_event("GET", "/v1/download/jobs", query={"limit": ["1"]}))

    assert answer["statusCode"] == 401
    assert json_body(answer)["error"] and header(answer, "WWW-Authenticate")


def test_the_rate_limiter_counts_each_source_ip_on_its_own(functions):
    first = functions["app.app"].result(api_event("GET", "/", source_ip="198.51.100.1"))
    second = functions["app.app"].result(api_event("GET", "/", source_ip="198.51.100.1"))
    other = functions["app.app"].result(api_event("GET", "/", source_ip="198.51.100.2"))

    remaining = [int(header(answer, "RateLimit-Remaining") or -1) for answer in (first, second, other)]
    assert remaining[1] == remaining[0] - 1
    assert remaining[2] == remaining[0]


def test_a_job_message_fans_out_and_a_poison_record_alone_is_reported_failed(functions, api_key, emulator, stack):
    # Given a job's own message, received from the queue, in a batch with a record no worker can read
    queue_url = stack.outputs["WorkQueueUrl"]
    job_id = json_body(initiate(functions, api_key, FILES, source_ip="203.0.113.20"))["jobId"]
    (job_record,) = [r for r in receive_all(queue_url, 1) if json.loads(r["body"])["jobId"] == job_id]
    poison = sqs_record("this is not a work message", message_id="poison-1")

    # When the worker function gets the batch
    answer = functions["app.process_work"].result(sqs_event([job_record, poison]))

    # Then only the poison record returns to the queue, and the job's files were queued
    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    files = receive_all(queue_url, len(FILES))
    assert kinds(files) == ["file"] * len(FILES)
    assert job_item(emulator, stack, job_id)["status"]["S"] == "processing"


def test_a_job_runs_to_completion_through_the_packaged_functions(functions, api_key, emulator, stack):
    bucket, queue_url = stack.outputs["BucketName"], stack.outputs["WorkQueueUrl"]
    for file_id in FILES:
        put_source(bucket, file_id)
    job_id = json_body(initiate(functions, api_key, FILES, source_ip="203.0.113.30"))["jobId"]

    handled = drain(lambda event, _context: functions["app.process_work"].result(event), queue_url)

    status = api_event(
        "GET",
        "/v1/download/status/{job_id}",
        path_parameters={"job_id": job_id},
        headers=keyed(api_key),
        query={"include": ["files"]},
        source_ip="203.0.113.30",
    )
    document = json_body(functions["app.app"].result(status))
    assert handled >= 1 + len(FILES) + 1  # the job, its files, the bundle
    assert document["status"] == "completed", document
    assert sorted(entry["fileId"] for entry in document["files"]) == FILES
    download = api_event("GET", "/v1/download/{job_id}", path_parameters={"job_id": job_id}, headers=keyed(api_key))
    redirect = functions["app.app"].result(download)
    assert redirect["statusCode"] == 302
    assert header(redirect, "Location").startswith(emulator.endpoint)


@pytest.mark.parametrize("repeat", [1, 2])
def test_the_scheduled_sweep_runs_and_answers_what_it_did(functions, stack, repeat):
    outcome = functions["app.sweep_stalled_jobs"].result(scheduled_event())

    assert outcome["resumed"] == [] and outcome["failed"] == []
