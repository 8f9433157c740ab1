"""What the fault tests do as a client, and how they judge a job's outcome.

Judging returns the problems it found instead of asserting at once, so a test
can count lost and miscounted jobs for the results table, then assert none.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Callable, Iterable

import requests

from chalicelib.local.samples import SAMPLE_FILE_IDS, sample_zip
from chalicelib.models import JobStatus
from chalicelib.polling import wait_until
from tests.support.devstack import DevStack

# How far along a status is: terminal ones are all last (none follows another).
STATUS_ORDER = {status.value: 2 if status.terminal else index for index, status in enumerate(JobStatus)}
SMALL_SAMPLES = SAMPLE_FILE_IDS[:8]  # 4 KiB .. ~150 KiB: quick to bundle
MISSING_IDS = tuple(range(70001, 70100, 7))  # never seeded: `unavailable`


def sample_sources(file_ids: Iterable[int]) -> dict[int, bytes]:
    return {file_id: sample_zip(file_id) for file_id in file_ids if file_id in SAMPLE_FILE_IDS}


@dataclass
class Tally:
    """What a test saw: 5xx answers and how many jobs were lost or miscounted."""

    server_errors: int = 0
    lost: list[str] = field(default_factory=list)
    miscounted: list[str] = field(default_factory=list)

    def saw(self, response: requests.Response) -> requests.Response:
        if response.status_code >= 500:
            self.server_errors += 1
        return response

    def fill(self, row) -> None:
        row.lost, row.miscounted, row.server_errors = len(self.lost), len(self.miscounted), self.server_errors


def initiate(stack: DevStack, file_ids, session=None, tally: Tally | None = None, **headers) -> requests.Response:
    response = (session or requests).post(
        stack.url("/v1/download/initiate"), json={"file_ids": list(file_ids)}, headers=headers, timeout=30
    )
    return tally.saw(response) if tally else response


def status(stack: DevStack, job_id: str, session=None, tally: Tally | None = None) -> dict:
    response = (session or requests).get(stack.url(f"/v1/download/status/{job_id}"), timeout=30)
    if tally:
        tally.saw(response)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1, what: str = "") -> object:
    """wait_until, polling twice as often: fault scenarios time what they observe."""
    return wait_until(predicate, timeout, interval, what)


def wait_terminal(
    stack: DevStack,
    job_ids: Iterable[str],
    timeout: float,
    tally: Tally | None = None,
    on_sample: Callable[[str, dict], None] | None = None,
    interval: float = 0.1,
) -> dict[str, dict]:
    """Polls every job until terminal or the deadline; jobs still running at the deadline are lost.

    `interval` is the pause between rounds over the pending jobs: with hundreds
    of jobs, poll like clients honouring Retry-After, or the polls alone
    saturate the single-process emulator and starve the consumers.
    """
    pending = set(job_ids)
    final: dict[str, dict] = {}

    def all_ended(session: requests.Session) -> bool:
        """One round over the pending jobs."""
        for job_id in sorted(pending):
            document = status(stack, job_id, session, tally)
            if on_sample:
                on_sample(job_id, document)
            if JobStatus(document["status"]).terminal:
                final[job_id] = document
                pending.discard(job_id)
        return not pending

    with requests.Session() as session:
        try:
            wait_until(lambda: all_ended(session), timeout, interval, what=f"{len(pending)} jobs to end")
        except TimeoutError:
            pass  # what is still pending is lost
    if tally:
        tally.lost.extend(f"{job_id}: not terminal after {timeout}s" for job_id in sorted(pending))
    return final


def bundle_members(stack: DevStack, job_id: str) -> dict[str, bytes]:
    """Follows the API's redirect to the presigned URL and unzips what S3 serves."""
    redirect = requests.get(stack.url(f"/v1/download/{job_id}"), allow_redirects=False, timeout=30)
    assert redirect.status_code == 302, redirect.text
    payload = requests.get(redirect.headers["Location"], timeout=60)
    assert payload.status_code == 200, payload.text[:300]
    archive = zipfile.ZipFile(io.BytesIO(payload.content))
    return {name: archive.read(name) for name in archive.namelist()}


def completed_problems(
    stack: DevStack, document: dict, file_ids: Iterable[int], sources: dict[int, bytes]
) -> list[str]:
    """Why a completed job is wrong: counts, progress, size, and the bundle's exact bytes."""
    unique = list(dict.fromkeys(file_ids))
    expected = {f"{file_id}.zip": sources[file_id] for file_id in unique if file_id in sources}
    problems = []
    counts = (document["totalFiles"], document["completedFiles"], document["availableFiles"], document["progress"])
    if counts != (len(unique), len(unique), len(expected), 100):
        problems.append(f"counts {counts} != {(len(unique), len(unique), len(expected), 100)}")
    if not expected:
        if document["downloadUrl"] is not None:
            problems.append("a URL for a job with no available file")
        return problems
    try:
        members = bundle_members(stack, document["jobId"])
    except (AssertionError, zipfile.BadZipFile, requests.RequestException) as exc:
        return problems + [f"bundle unreadable: {exc}"]
    if sorted(members) != sorted(expected):
        problems.append(f"bundle holds {sorted(members)}, expected {sorted(expected)}")
    else:
        problems += [f"{name} differs from its source" for name in expected if members[name] != expected[name]]
    return problems


def judge_completed(
    stack: DevStack, tally: Tally, final: dict[str, dict], jobs: dict[str, list[int]], sources: dict[int, bytes]
) -> None:
    """Every job must be completed and exact; the rest go to the tally."""
    for job_id, file_ids in jobs.items():
        document = final.get(job_id)
        if document is None:
            continue  # already counted lost by wait_terminal
        if document["status"] != JobStatus.COMPLETED:
            tally.lost.append(f"{job_id}: {document['status']} ({document.get('error')})")
            continue
        problems = completed_problems(stack, document, file_ids, sources)
        if problems:
            tally.miscounted.append(f"{job_id}: {'; '.join(problems)}")


class MonotonicWatch:
    """Samples of each job's status document; records any step backwards."""

    def __init__(self) -> None:
        self.last: dict[str, dict] = {}
        self.samples = 0
        self.regressions: list[str] = []

    def __call__(self, job_id: str, document: dict) -> None:
        self.samples += 1
        before = self.last.get(job_id)
        if before is not None:
            for name, key in (
                ("status", lambda d: STATUS_ORDER[d["status"]]),
                ("completedFiles", lambda d: d["completedFiles"]),
                ("availableFiles", lambda d: d["availableFiles"]),
                ("progress", lambda d: d["progress"]),
            ):
                if key(document) < key(before):
                    self.regressions.append(f"{job_id}: {name} {key(before)} -> {key(document)}")
            if JobStatus(before["status"]).terminal and document["status"] != before["status"]:
                self.regressions.append(f"{job_id}: terminal {before['status']} -> {document['status']}")
        self.last[job_id] = document


def in_flight(sqs, queue_url: str) -> int:
    return int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])[
            "Attributes"
        ]["ApproximateNumberOfMessagesNotVisible"]
    )


def job_item(dynamodb, table: str, job_id: str) -> dict:
    """The raw job item, straight from the table (what the API does not show: claims, resumes)."""
    return dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}, ConsistentRead=True
    ).get("Item", {})


def result_keys(s3, bucket: str, job_id: str) -> list[str]:
    """Every bundle object of the job (each build writes its own key under the job's folder)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"results/{job_id}/")
    return [entry["Key"] for entry in listed.get("Contents", [])]


def published_keys(stack: DevStack, job_id: str) -> list[str]:
    """The bundle the job hands out, as a one-item list ([] when it hands out none)."""
    env = stack.stack_env()
    key = job_item(stack.aws("dynamodb"), env["JOBS_TABLE_NAME"], job_id).get("resultKey", {}).get("S")
    return [key] if key else []
