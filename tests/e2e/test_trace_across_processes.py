"""One X-Ray trace across the real processes: API -> SQS -> consumers, as scripts/xray_listen.py shows it.

The stack's processes send their segments over UDP to AWS_XRAY_DAEMON_ADDRESS,
exactly as they would to the X-Ray daemon; the test listens there itself.
"""

from __future__ import annotations

import pytest
import requests

from chalicelib.polling import wait_until
from scripts.xray_listen import SegmentListener, render
from tests.support.devstack import poll_until_terminal, start_dev_stack


@pytest.fixture
def traced_stack(tmp_path):
    listener = SegmentListener()
    listener.start()
    stack = start_dev_stack(
        tmp_path,
        AWS_XRAY_DAEMON_ADDRESS=listener.address,
        LOCAL_CONSUMERS="2",
        DOWNLOAD_DELAY_MIN_MS="100",
        DOWNLOAD_DELAY_MAX_MS="200",
        RATE_LIMIT_ENABLED="false",
    )
    try:
        yield stack, listener
    finally:
        stack.stop()
        listener.close()


def segments_of(documents: list[dict], trace_id: str) -> list[dict]:
    return [document for document in list(documents) if document.get("trace_id") == trace_id]


def entity_ids(entity: dict) -> set[str]:
    return {entity["id"]}.union(*(entity_ids(sub) for sub in entity.get("subsegments", [])))


def calls(entity: dict) -> list[str]:
    found = [f"{entity['name']} {entity['aws']['operation']}"] if entity.get("aws", {}).get("operation") else []
    return found + [call for sub in entity.get("subsegments", []) for call in calls(sub)]


def test_initiate_fan_out_each_file_and_the_bundle_are_one_trace(traced_stack):
    stack, listener = traced_stack
    response = requests.post(stack.url("/v1/download/initiate"), json={"file_ids": [70000, 70007, 70001]}, timeout=10)
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    assert poll_until_terminal(stack, job_id)[0]["status"] == "completed"

    def job_segments() -> list[dict]:
        return [
            d
            for d in list(listener.documents)
            if d.get("type") != "subsegment" and (d.get("annotations") or {}).get("jobId") == job_id
        ]

    # Each file with no successor in the job's window asks for the bundle; the one holding the claim builds it.
    [bundle] = wait_until(
        lambda: [
            d
            for d in job_segments()
            if d["name"] == "delineate-bundle" and "s3 CompleteMultipartUpload" in calls(d)  # sent as it ends
        ],
        timeout=15,
        interval=0.1,
        what=f"the bundle segment of {job_id}",
    )
    trace_id = bundle["trace_id"]
    trace = segments_of(listener.documents, trace_id)
    [api] = [segment for segment in trace if "parent_id" not in segment]
    worker = [segment for segment in trace if segment is not api and segment.get("type") != "subsegment"]
    by_name = sorted({(segment["name"], (segment.get("annotations") or {}).get("fileId")) for segment in worker})
    known = set().union(*(entity_ids(segment) for segment in trace))

    assert api["name"] == "delineate-api" and "dynamodb PutItem" in calls(api) and "sqs SendMessage" in calls(api)
    assert by_name == [
        ("delineate-bundle", None),
        ("delineate-file", 70000),
        ("delineate-file", 70001),
        ("delineate-file", 70007),
        ("delineate-job", None),
    ]
    assert all(segment["parent_id"] in known for segment in worker)  # each hangs under a call of the trace
    assert all((segment.get("annotations") or {}).get("jobId") == job_id for segment in [api, *worker])
    assert "s3 CompleteMultipartUpload" in calls(bundle)
    tree = render(trace)
    assert tree.startswith(f"trace {trace_id}:") and tree.index("delineate-job") < tree.index("delineate-bundle")
