"""Transaction conflicts: retried inside the store; one that persists is a 503 or a retried message, never a failure."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from chalice.test import Client

import app
from chalicelib import runtime
from chalicelib.api.service import DownloadService
from chalicelib.aws.clients import make_clients
from chalicelib.aws.queue import MessageKind, WorkMessage, WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.jobs.conflicts import ATTEMPTS, StoreContention, is_transaction_conflict
from chalicelib.jobs.store import JobStore, RecordOutcome
from chalicelib.models import FileResult, FileStatus, InitiateRequest, JobStatus
from chalicelib.worker.processing import Worker
from tests.support.aws import sqs_record

PERSISTING = 1000
JSON = {"Content-Type": "application/json"}


class ConflictingTable:
    """The real (moto) table, whose first `conflicts` writes meet another transaction, as DynamoDB reports it:
    a plain write raises TransactionConflictException, a transaction is cancelled with a TransactionConflict reason."""

    def __init__(self, table, conflicts: int) -> None:
        self._table = table
        self.conflicts = conflicts
        self.meta = SimpleNamespace(client=_ConflictingClient(table.meta.client, self))

    def __getattr__(self, name):
        return getattr(self._table, name)

    def take(self) -> bool:
        if self.conflicts <= 0:
            return False
        self.conflicts -= 1
        return True

    def put_item(self, **kwargs):
        self._conflict("PutItem")
        return self._table.put_item(**kwargs)

    def update_item(self, **kwargs):
        self._conflict("UpdateItem")
        return self._table.update_item(**kwargs)

    def _conflict(self, operation: str) -> None:
        if self.take():
            client = self._table.meta.client
            error = {
                "Error": {"Code": "TransactionConflictException", "Message": "Transaction is ongoing for the item"}
            }
            raise client.exceptions.TransactionConflictException(error, operation)


class _ConflictingClient:
    def __init__(self, client, table: ConflictingTable) -> None:
        self._client, self._table = client, table

    def __getattr__(self, name):
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs):
        if self._table.take():
            items = kwargs["TransactItems"]
            reasons = [{"Code": "None"}] * (len(items) - 1) + [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            ]
            error = {
                "Error": {
                    "Code": "TransactionCanceledException",
                    "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                },
                "CancellationReasons": reasons,
            }
            raise self._client.exceptions.TransactionCanceledException(error, "TransactWriteItems")
        return self._client.transact_write_items(**kwargs)


@pytest.fixture
def conflicting(deployed):
    """A store on a table whose next writes conflict: set `.conflicts` to how many."""
    table = ConflictingTable(deployed.table, 0)
    return table, JobStore(table, deployed.settings.job_ttl_seconds)


def api_with(store: JobStore, settings) -> None:
    clients = make_clients()
    queue, storage = WorkQueue(clients.sqs, settings.work_queue_url), Storage(clients.s3, settings.bucket)
    runtime.override(service=DownloadService(store, queue, storage, settings))


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.body
    body = json.loads(response.body)
    assert set(body) >= {"error", "message", "requestId"}
    assert body["error"] == "Service Unavailable"
    assert "Transaction" not in body["message"]


# -- retried to success -----------------------------------------------------------


def test_counting_a_file_that_meets_other_transactions_is_retried_and_counts_once(deployed, conflicting):
    table, store = conflicting
    job = deployed.create_job(70000, processing=True)
    table.conflicts = ATTEMPTS - 1

    outcome = store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, 10))

    assert outcome is RecordOutcome.RECORDED
    assert store.get(job.job_id).completed_files == 1


def test_cancelling_while_a_transaction_holds_the_job_is_retried_and_cancels(deployed, conflicting):
    table, store = conflicting
    job = deployed.create_job(70000, processing=True)
    table.conflicts = ATTEMPTS - 1

    assert store.cancel(job.job_id) is True
    assert store.get(job.job_id).status is JobStatus.CANCELLED


def test_idempotent_create_that_meets_a_transaction_is_retried_and_creates_one_job(deployed, conflicting):
    table, store = conflicting
    table.conflicts = ATTEMPTS - 1

    job, created = store.create(InitiateRequest((70000,), idempotency_key="k-conflict"))
    again, created_again = store.create(InitiateRequest((70000,), idempotency_key="k-conflict"))

    assert (created, created_again, again.job_id) == (True, False, job.job_id)


def test_a_failed_condition_beside_a_conflict_is_not_a_conflict(deployed):
    client = deployed.table.meta.client
    reasons = [{"Code": "ConditionalCheckFailed"}, {"Code": "TransactionConflict"}]
    error = client.exceptions.TransactionCanceledException(
        {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}, "CancellationReasons": reasons},
        "TransactWriteItems",
    )

    assert is_transaction_conflict(error) is False


# -- persisting -------------------------------------------------------------------


def test_a_persisting_conflict_is_store_contention_after_a_few_tries(deployed, conflicting):
    table, store = conflicting
    job = deployed.create_job(70000, processing=True)
    table.conflicts = PERSISTING

    with pytest.raises(StoreContention):
        store.cancel(job.job_id)

    assert PERSISTING - table.conflicts == ATTEMPTS


def test_cancel_during_a_persisting_conflict_answers_503_in_the_error_shape(deployed, conflicting):
    table, store = conflicting
    job = deployed.create_job(70000, processing=True)
    api_with(store, deployed.settings)
    table.conflicts = PERSISTING

    with Client(app.app) as client:
        response = client.http.delete(f"/v1/download/{job.job_id}")

    assert_unavailable(response)
    assert deployed.status(job.job_id)["status"] == "processing"


def test_initiate_with_an_idempotency_key_during_a_persisting_conflict_answers_503(deployed, conflicting):
    table, store = conflicting
    api_with(store, deployed.settings)
    table.conflicts = PERSISTING

    with Client(app.app) as client:
        response = client.http.post(
            "/v1/download/initiate",
            body=json.dumps({"file_ids": [70000]}),
            headers={**JSON, "Idempotency-Key": "k-busy"},
        )

    assert_unavailable(response)


def test_a_file_message_meeting_a_persisting_conflict_is_retried_and_its_job_is_not_failed(deployed, conflicting):
    table, store = conflicting
    job = deployed.create_job(70000, processing=True)
    clients = make_clients()
    settings = deployed.settings
    worker = Worker(
        store, WorkQueue(clients.sqs, settings.work_queue_url), Storage(clients.s3, settings.bucket), settings
    )
    runtime.override(worker=worker)
    table.conflicts = PERSISTING
    body = WorkMessage(MessageKind.FILE, job.job_id, 70000).to_body()

    results = [
        app.process_work({"Records": [sqs_record(body, "busy", receive_count=count)]}, None)
        for count in range(1, settings.max_receive_count + 1)
    ]

    assert results == [{"batchItemFailures": [{"itemIdentifier": "busy"}]}] * settings.max_receive_count
    document = deployed.status(job.job_id)
    assert (document["status"], document["error"]) == ("processing", None)
