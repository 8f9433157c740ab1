"""Jobs by owner: listing on the owner-jobs index, tamper-safe cursors, the race-free active-job count."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from boto3.dynamodb.conditions import Key

from chalicelib.errors import DependencyUnavailable
from chalicelib.jobs.owners import ActiveJobLimitReached, InvalidCursor, OwnerJobs, active_jobs, encode_cursor
from chalicelib.jobs.store import JobStore
from chalicelib.models import FileResult, FileStatus, InitiateRequest

TTL = 3600
ALICE, BOB = "a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2"


@pytest.fixture
def store(deployed, clock):
    return JobStore(deployed.table, TTL, clock=clock)


@pytest.fixture
def owners(deployed, clock):
    return OwnerJobs(deployed.table, clock=clock)


def create_jobs(store, clock, owner, count, **kwargs):
    """`count` jobs a second apart, oldest first."""
    ids = []
    for index in range(count):
        job, _ = store.create(InitiateRequest((70000 + index,)), owner, **kwargs)
        ids.append(job.job_id)
        clock.advance(1)
    return ids


def all_pages(owners, owner, limit, status=None):
    pages, cursor = [], None
    while True:
        jobs, cursor = owners.page(owner, limit, cursor, status)
        pages.append([job.job_id for job in jobs])
        if cursor is None:
            return pages


def test_listing_pages_through_the_owners_jobs_newest_first(store, owners, clock):
    mine = create_jobs(store, clock, ALICE, 5)
    create_jobs(store, clock, BOB, 2)
    store.create(InitiateRequest((70099,)))  # no owner: in no one's listing

    pages = all_pages(owners, ALICE, 2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [job_id for page in pages for job_id in page] == list(reversed(mine))


def test_a_status_filter_fills_pages_across_query_rounds(store, owners, clock):
    ids = create_jobs(store, clock, ALICE, 7)
    cancelled = ids[::2]
    for job_id in cancelled:
        assert store.cancel(job_id)

    pages = all_pages(owners, ALICE, 3, status="cancelled")

    assert [job_id for page in pages for job_id in page] == list(reversed(cancelled))
    assert all(len(page) == 3 for page in pages[:-1])


def test_a_cursor_is_refused_for_another_owner_and_when_tampered_with(store, owners, clock):
    create_jobs(store, clock, ALICE, 3)
    _, cursor = owners.page(ALICE, 1)
    assert cursor is not None
    forged = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

    with pytest.raises(InvalidCursor):
        owners.page(BOB, 1, cursor)
    for bad in ("", "not-base64!", "e30", encode_cursor({"owner": ALICE, "createdAt": "x", "pk": "JOB#1"})):
        with pytest.raises(InvalidCursor):
            owners.page(ALICE, 1, bad)
    assert forged["o"] == ALICE  # the owner is inside, so it is checked on the way back


def test_expired_jobs_are_not_listed(store, owners, clock):
    create_jobs(store, clock, ALICE, 2)
    clock.advance(TTL + 5)

    assert owners.page(ALICE, 10) == ([], None)


def test_max_active_jobs_refuses_the_job_past_the_limit_until_one_ends(store, deployed, clock):
    first, _ = create_jobs(store, clock, ALICE, 2, max_active=2)

    with pytest.raises(ActiveJobLimitReached) as refused:
        store.create(InitiateRequest((70100,)), ALICE, 2)
    assert refused.value.limit == 2
    store.create(InitiateRequest((70100,)), BOB, 2)  # another key's count is its own

    assert store.cancel(first)
    store.create(InitiateRequest((70100,)), ALICE, 2)
    assert active_jobs(deployed.table, ALICE) == 2


def test_every_terminal_transition_releases_one_slot_once(store, deployed, clock):
    cancelled, failed, _ = create_jobs(store, clock, ALICE, 3, max_active=3)

    assert store.cancel(cancelled) and store.fail(failed, "broken")
    assert not store.cancel(cancelled) and not store.fail(failed, "again")

    assert active_jobs(deployed.table, ALICE) == 1


def test_the_limit_is_the_counters_condition_not_a_read_so_many_attempts_admit_exactly_the_limit(store, deployed):
    """The count is checked by DynamoDB inside the create's transaction (no read-then-write),
    which is what serialises racing initiates; moto cannot run transactions concurrently."""

    def attempt(index):
        try:
            store.create(InitiateRequest((70000 + index,)), ALICE, 3)
        except ActiveJobLimitReached:
            return False
        return True

    admitted = sum(attempt(index) for index in range(8))

    assert admitted == 3 == active_jobs(deployed.table, ALICE)


def test_an_idempotent_replay_at_the_limit_returns_the_job(store):
    request = InitiateRequest((70000,), idempotency_key="once")
    job, created = store.create(request, ALICE, 1)

    again, created_again = store.create(request, ALICE, 1)

    assert (created, created_again, again.job_id) == (True, False, job.job_id)


def test_the_idempotency_key_is_scoped_to_its_owner(store):
    request = InitiateRequest((70000,), idempotency_key="shared")

    alice, _ = store.create(request, ALICE)
    bob, bob_created = store.create(request, BOB)

    assert bob_created and bob.job_id != alice.job_id
    assert (alice.owner, bob.owner) == (ALICE, BOB)


def test_the_owner_index_holds_only_what_its_query_reads_so_counting_a_file_never_writes_it(deployed, store):
    job, _ = store.create(InitiateRequest((70000,)), ALICE)

    entries = deployed.table.query(IndexName="owner-jobs", KeyConditionExpression=Key("owner").eq(ALICE))["Items"]

    assert [set(entry) for entry in entries] == [{"pk", "sk", "owner", "createdAt", "status", "ttl"}]
    assert {"completedFiles", "updatedAt", "fileIdsPacked"}.isdisjoint(entries[0])


def test_a_listed_job_shows_the_progress_its_item_has_now(owners, store):
    job, _ = store.create(InitiateRequest((70000, 70001)), ALICE)
    assert store.start_processing(job.job_id)
    store.record_file(job.job_id, FileResult(70000, FileStatus.AVAILABLE, 10))

    jobs, _ = owners.page(ALICE, limit=10, status="processing")

    assert [(listed.job_id, listed.completed_files, listed.file_ids) for listed in jobs] == [
        (job.job_id, 1, (70000, 70001))
    ]


class Unprocessing:
    """A client whose BatchGetItem leaves the first `refusals` requests' keys unprocessed, as a throttled table does."""

    def __init__(self, client, refusals):
        self._client, self.refusals, self.calls = client, refusals, 0

    def batch_get_item(self, RequestItems):  # noqa: N803 (boto3's name)
        self.calls += 1
        if self.calls <= self.refusals:
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        return self._client.batch_get_item(RequestItems=RequestItems)


def with_client(table, client):
    return SimpleNamespace(name=table.name, query=table.query, meta=SimpleNamespace(client=client))


def test_listed_keys_left_unprocessed_are_asked_again(deployed, store, clock):
    created = create_jobs(store, clock, ALICE, 3)
    client = Unprocessing(deployed.table.meta.client, refusals=2)

    jobs, _ = OwnerJobs(with_client(deployed.table, client), clock=clock).page(ALICE, limit=10)

    assert [job.job_id for job in jobs] == created[::-1] and client.calls == 3


def test_a_table_that_keeps_refusing_the_listed_keys_is_a_503_not_a_short_page(deployed, store, clock):
    create_jobs(store, clock, ALICE, 1)
    client = Unprocessing(deployed.table.meta.client, refusals=1000)

    with pytest.raises(DependencyUnavailable):
        OwnerJobs(with_client(deployed.table, client), clock=clock).page(ALICE, limit=10)
