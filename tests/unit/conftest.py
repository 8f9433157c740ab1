"""Unit-tier fixtures: the moto stack of tests/conftest.py, seen the way the service sees it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import boto3
import moto  # noqa: F401  (before any Session: moto's stubber is a botocore built-in handler)
import pytest

from chalicelib import metrics, runtime
from chalicelib.aws.clients import WORKER_CONFIG, make_clients
from chalicelib.aws.queue import WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.config import Settings
from chalicelib.jobs.store import JobStore
from chalicelib.models import InitiateRequest, Job
from chalicelib.worker.processing import Worker
from scripts.stats import emf_records


@pytest.fixture
def emitted(capsys):
    """Reads the EMF lines metrics.flush() writes from here on (what earlier tests left pending is dropped
    first), parsed by the same reader `make stats` uses."""
    metrics.flush()
    capsys.readouterr()

    def read() -> list[dict]:
        metrics.flush()
        return list(emf_records(capsys.readouterr().out.splitlines()))

    return read


@pytest.fixture(autouse=True)
def fresh_runtime(monkeypatch):
    """No service graph (or override) leaks from one test into the next.

    Rate limiting is off unless a test turns it on (the `stack` fixture does the
    same): the limiter counts in DynamoDB, which tests without a stack do not have.
    """
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    runtime.reset()
    yield
    runtime.reset()


_shared_session: list[boto3.session.Session] = []


@pytest.fixture(autouse=True)
def shared_boto3_session(monkeypatch):
    """make_clients runs as in production, but on one boto3 Session for the whole tier.

    A new Session reloads every service model (~0.1-0.4 s each time runtime is
    rebuilt); sharing it keeps the tier fast. Clients are still new per test, and
    moto intercepts them all (its stubber is a botocore built-in handler).
    """
    import chalicelib.aws.clients

    if not _shared_session:
        _shared_session.append(
            boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        )
    session = _shared_session[0]
    monkeypatch.setattr(
        chalicelib.aws.clients, "boto3", SimpleNamespace(session=SimpleNamespace(Session=lambda: session))
    )


class Clock:
    """A clock the test moves by hand; JobStore, DownloadService accept it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = (start or datetime.now(timezone.utc)).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Deployed:
    """The resources of infra/template.yaml in moto, plus readers for what a user would see."""

    bucket: str
    queue_url: str
    dlq_url: str
    table_name: str
    s3: Any = field(default_factory=lambda: boto3.client("s3"))
    sqs: Any = field(default_factory=lambda: boto3.client("sqs"))

    @property
    def table(self):
        return boto3.resource("dynamodb").Table(self.table_name)

    @property
    def settings(self) -> Settings:
        return runtime.settings()

    def store(self, clock=None) -> JobStore:
        kwargs = {"clock": clock} if clock else {}
        return JobStore(self.table, self.settings.job_ttl_seconds, **kwargs)

    def create_job(self, *file_ids: int, processing: bool = False) -> Job:
        """A job item written as initiate would, without its job message."""
        store = self.store()
        job, _ = store.create(InitiateRequest(tuple(file_ids)))
        if processing:
            assert store.start_processing(job.job_id)
            job = store.get(job.job_id)
        return job

    def job_item(self, job_id: str) -> dict | None:
        return self.table.get_item(Key={"pk": f"JOB#{job_id}", "sk": "JOB"}, ConsistentRead=True).get("Item")

    def status(self, job_id: str) -> dict:
        return runtime.service().status(job_id)

    def result_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="results/")
        return [item["Key"] for item in listing.get("Contents", [])]

    def published_key(self, job_id: str) -> str:
        """The bundle object the job hands out (each build writes its own key)."""
        return self.job_item(job_id)["resultKey"]

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def dead_letters(self) -> list[str]:
        response = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [message["Body"] for message in response.get("Messages", [])]


@pytest.fixture
def deployed(stack, monkeypatch) -> Deployed:
    """The stack, with MAX_RECEIVE_COUNT read from the deployed queue's RedrivePolicy.

    The worker fails a job on the receive SQS will dead-letter after, so the two
    numbers must agree; the template is their source of truth.
    """
    sqs = boto3.client("sqs")
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=stack["WorkQueueUrl"], AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    monkeypatch.setenv("MAX_RECEIVE_COUNT", str(policy["maxReceiveCount"]))
    runtime.reset()
    return Deployed(
        bucket=stack["BucketName"],
        queue_url=stack["WorkQueueUrl"],
        dlq_url=stack["DeadLetterQueueUrl"],
        table_name=stack["JobsTableName"],
    )


@dataclass
class Consumer:
    """The worker app.process_work runs, built on clients the test can watch."""

    worker: Worker
    storage: Storage
    store: JobStore
    queue: WorkQueue
    s3_calls: Counter

    @property
    def bundle_builds(self) -> int:
        return self.s3_calls["CreateMultipartUpload"]


@pytest.fixture
def consumer(deployed) -> Consumer:
    clients = make_clients(WORKER_CONFIG)
    calls: Counter = Counter()
    clients.s3.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    settings = deployed.settings
    store = JobStore(clients.dynamodb.Table(settings.jobs_table), settings.job_ttl_seconds)
    storage = Storage(clients.s3, settings.bucket)
    queue = WorkQueue(clients.sqs, settings.work_queue_url)
    worker = Worker(store, queue, storage, settings)
    runtime.override(worker=worker)
    return Consumer(worker, storage, store, queue, calls)
