"""Routes with AUTH_MODE=api-key: who may call, whose jobs they see, and their limits per key."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

import app
from chalicelib import runtime
from chalicelib.keys.store import KeyStore
from tests.support.aws import drain, put_source

JSON = {"Content-Type": "application/json"}
PUBLIC = ["/", "/health", "/openapi.json", "/docs", "/app"]


@pytest.fixture
def keys(deployed, monkeypatch):
    monkeypatch.setenv("AUTH_MODE", "api-key")
    monkeypatch.setenv("API_KEY_CACHE_SECONDS", "0")  # a revocation is seen at once
    runtime.reset()
    return KeyStore(deployed.table)


@pytest.fixture
def client(keys):
    with Client(app.app) as test_client:
        yield test_client


def bearer(issued, **extra):
    return {**JSON, "Authorization": f"Bearer {issued.key}", **extra}


def initiate(client, headers, file_ids=(70000,)):
    response = client.http.post("/v1/download/initiate", body=json.dumps({"file_ids": list(file_ids)}), headers=headers)
    assert response.status_code == 202, response.body
    return json.loads(response.body)["jobId"]


def assert_unauthorized(response):
    assert response.status_code == 401, response.body
    body = json.loads(response.body)
    assert set(body) == {"error", "message", "requestId"} and body["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer dlk_nope"}, {"X-API-Key": "garbage"}],
    ids=["none", "basic", "malformed", "x-api-key garbage"],
)
@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/download/initiate"),
        ("GET", "/v1/download/jobs"),
        ("GET", "/v1/download/status/3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"),
        ("DELETE", "/v1/download/3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"),
        ("POST", "/v1/download/check"),
    ],
)
def test_api_routes_without_a_valid_key_are_401_with_a_bearer_challenge(client, method, path, headers):
    assert_unauthorized(client.http.request(method, path, headers={**JSON, **headers}, body=b"{}"))


@pytest.mark.parametrize("path", PUBLIC)
def test_public_routes_need_no_key(client, path):
    assert client.http.get(path).status_code == 200


def test_a_key_is_accepted_as_bearer_or_x_api_key(client, keys):
    issued = keys.create("ci")
    assert initiate(client, bearer(issued))
    assert initiate(client, {**JSON, "X-API-Key": issued.key})


def test_a_revoked_key_is_refused(client, keys):
    issued = keys.create("leaver")
    job_id = initiate(client, bearer(issued))

    keys.revoke(issued.record.key_id)

    message = assert_unauthorized(client.http.get(f"/v1/download/status/{job_id}", headers=bearer(issued)))
    assert "revoked" in message


def test_two_keys_never_see_each_others_jobs_by_any_route(client, keys, deployed):
    alice, bob = keys.create("alice"), keys.create("bob")
    put_source(deployed.bucket, 70000)
    done = initiate(client, bearer(alice))
    drain(app.process_work, deployed.queue_url)
    running = initiate(client, bearer(alice))
    unknown = "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"

    for job_id in (done, running, unknown):
        for method, path in [
            ("GET", f"/v1/download/status/{job_id}"),
            ("GET", f"/v1/download/status/{job_id}?include=files"),
            ("GET", f"/v1/download/{job_id}"),
            ("DELETE", f"/v1/download/{job_id}"),
        ]:
            response = client.http.request(method, path, headers=bearer(bob), body=b"")
            assert response.status_code == 404, (method, path)
            assert json.loads(response.body)["message"] == f"job {job_id} not found"
    assert json.loads(client.http.get("/v1/download/jobs", headers=bearer(bob)).body) == {
        "jobs": [],
        "nextCursor": None,
    }
    assert (
        json.loads(client.http.get(f"/v1/download/status/{running}", headers=bearer(alice)).body)["status"] == "queued"
    )
    assert client.http.get(f"/v1/download/{done}", headers=bearer(alice)).status_code == 302


def test_listing_pages_through_the_callers_jobs_newest_first(client, keys):
    alice = keys.create("alice")
    created = [initiate(client, bearer(alice), (70000 + index,)) for index in range(5)]
    initiate(client, bearer(keys.create("bob")))

    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = client.http.get(f"/v1/download/jobs{query}", headers=bearer(alice))
        assert response.status_code == 200, response.body
        body = json.loads(response.body)
        seen += [job["jobId"] for job in body["jobs"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert pages == 3 and sorted(seen) == sorted(created) and len(seen) == 5
    assert {
        job["status"]
        for job in json.loads(client.http.get("/v1/download/jobs?status=queued", headers=bearer(alice)).body)["jobs"]
    } == {"queued"}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "limit=²", "status=done", "cursor=%21%21"])
def test_bad_listing_queries_are_400(client, keys, query):
    response = client.http.get(f"/v1/download/jobs?{query}", headers=bearer(keys.create("q")))
    assert response.status_code == 400, response.body


def test_another_keys_cursor_is_400(client, keys):
    alice, bob = keys.create("alice"), keys.create("bob")
    for index in range(2):
        initiate(client, bearer(alice), (70000 + index,))
    cursor = json.loads(client.http.get("/v1/download/jobs?limit=1", headers=bearer(alice)).body)["nextCursor"]

    response = client.http.get(f"/v1/download/jobs?cursor={cursor}", headers=bearer(bob))

    assert response.status_code == 400 and "cursor" in json.loads(response.body)["message"]


def test_the_literal_listing_path_leaves_other_non_uuids_a_400(client, keys):
    headers = bearer(keys.create("paths"))
    assert client.http.get("/v1/download/jobs", headers=headers).status_code == 200
    assert client.http.get("/v1/download/job", headers=headers).status_code == 400
    assert client.http.delete("/v1/download/jobs", headers=headers).status_code == 405


def test_max_active_jobs_exceeded_is_429_saying_so(client, keys):
    limited = keys.create("batch", max_active_jobs=1)
    job_id = initiate(client, bearer(limited))

    refused = client.http.post("/v1/download/initiate", body=json.dumps({"file_ids": [70001]}), headers=bearer(limited))
    assert refused.status_code == 429 and "max active jobs" in json.loads(refused.body)["message"]

    client.http.delete(f"/v1/download/{job_id}", headers=bearer(limited))
    assert initiate(client, bearer(limited), (70001,))


def test_the_rate_limit_counts_per_key_at_the_keys_own_limit(client, keys, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    runtime.reset()
    slow, other = keys.create("slow", rate_limit=2), keys.create("other")

    answers = [client.http.get("/v1/download/jobs", headers=bearer(slow)) for _ in range(3)]

    assert [response.status_code for response in answers] == [200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "2"
    assert client.http.get("/v1/download/jobs", headers=bearer(other)).headers["RateLimit-Limit"] == "100"


def test_an_address_over_its_limit_is_refused_before_its_key_is_looked_up(client, keys, monkeypatch):
    """A flood of guessed keys from one address: each would be a consistent GetItem and a cache entry."""
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    monkeypatch.setenv("RATE_LIMIT_MAX_REQUESTS", "5")
    runtime.reset()
    reads = []
    real_get = KeyStore.get
    monkeypatch.setattr(KeyStore, "get", lambda store, key_id: reads.append(key_id) or real_get(store, key_id))
    guesses = [f"dlk_{index:016x}_{'A' * 43}" for index in range(40)]  # well-formed, so each is worth a lookup

    answers = [client.http.get("/v1/download/jobs", headers={"X-API-Key": guess}) for guess in guesses]

    assert [response.status_code for response in answers] == [401] * 5 + [429] * 35
    assert len(reads) == 5
    assert answers[-1].headers["Retry-After"] == answers[-1].headers["RateLimit-Reset"]


def test_listing_without_keys_is_403_explaining_why(deployed):
    with Client(app.app) as client:
        response = client.http.get("/v1/download/jobs")
    assert response.status_code == 403
    assert "API key" in json.loads(response.body)["message"]
