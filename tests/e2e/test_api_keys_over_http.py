"""API keys at the HTTP edge of a running dev stack (`AUTH_MODE=api-key make dev`): chalice local,
the emulator and the consumers, with keys made by the admin command as an operator would."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.e2e.test_admin_keys import admin
from tests.support.devstack import start_dev_stack

UNKNOWN = "3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_dev_stack(
        tmp_path_factory.mktemp("api-keys"),
        AUTH_MODE="api-key",
        API_KEY_CACHE_SECONDS="1",
        DOWNLOAD_DELAY_ENABLED="false",
        RATE_LIMIT_ENABLED="true",
        LOCAL_CONSUMERS="1",
    )
    yield stack
    stack.stop()


def create_key(stack, *options: str) -> tuple[str, str]:
    created = admin(stack, "create", "--name", "e2e", *options)
    assert created.returncode == 0, created.stderr
    key = re.search(r"DELINEATE_API_KEY=(dlk_\S+)", created.stdout).group(1)
    key_id = re.search(r"DELINEATE_API_KEY_ID=([0-9a-f]{16})", created.stdout).group(1)
    return key, key_id


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def initiate(stack, key, file_ids=(70000,)):
    response = requests.post(
        stack.url("/v1/download/initiate"), json={"file_ids": list(file_ids)}, headers=auth(key), timeout=10
    )
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def test_public_routes_are_public_and_the_rest_answer_401_with_a_challenge(stack):
    for path in ("/", "/health", "/openapi.json", "/docs", "/app"):
        assert requests.get(stack.url(path), timeout=10).status_code == 200, path

    refused = requests.get(stack.url(f"/v1/download/status/{UNKNOWN}"), timeout=10)

    assert refused.status_code == 401
    assert set(refused.json()) == {"error", "message", "requestId"}
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_two_keys_never_see_each_others_jobs(stack):
    (alice, _), (bob, _) = create_key(stack), create_key(stack)
    job_id = initiate(stack, alice)

    for method, path in [
        ("GET", f"/v1/download/status/{job_id}"),
        ("GET", f"/v1/download/status/{job_id}?include=files"),
        ("GET", f"/v1/download/{job_id}"),
        ("DELETE", f"/v1/download/{job_id}"),
    ]:
        theirs = requests.request(method, stack.url(path), headers=auth(bob), timeout=10)
        unknown = requests.request(method, stack.url(path.replace(job_id, UNKNOWN)), headers=auth(bob), timeout=10)
        assert theirs.status_code == unknown.status_code == 404, (method, path)
        assert theirs.json()["message"].replace(job_id, UNKNOWN) == unknown.json()["message"]
    assert requests.get(stack.url("/v1/download/jobs"), headers=auth(bob), timeout=10).json()["jobs"] == []
    mine = requests.get(stack.url(f"/v1/download/status/{job_id}"), headers={"X-API-Key": alice}, timeout=10)
    assert mine.status_code == 200


def test_listing_pages_across_pages_and_the_literal_path_wins_over_the_job_id(stack):
    key, _ = create_key(stack)
    created = {initiate(stack, key, (70000 + index,)) for index in range(5)}

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = requests.get(stack.url("/v1/download/jobs"), params=params, headers=auth(key), timeout=10)
        assert page.status_code == 200, page.text
        seen += [job["jobId"] for job in page.json()["jobs"]]
        pages, cursor = pages + 1, page.json()["nextCursor"]
        if cursor is None:
            break

    assert (pages, len(seen), set(seen)) == (3, 5, created)
    assert requests.get(stack.url("/v1/download/nope"), headers=auth(key), timeout=10).status_code == 400


def test_a_revoked_key_is_refused_within_the_cache_period(stack):
    key, key_id = create_key(stack)
    assert requests.get(stack.url("/v1/download/jobs"), headers=auth(key), timeout=10).status_code == 200

    assert admin(stack, "revoke", key_id).returncode == 0

    deadline = time.monotonic() + 10  # API_KEY_CACHE_SECONDS=1 on this stack
    while requests.get(stack.url("/v1/download/jobs"), headers=auth(key), timeout=10).status_code != 401:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.2)


def test_limits_are_per_key(stack):
    limited, _ = create_key(stack, "--max-active-jobs", "1", "--rate-limit", "5")
    other, _ = create_key(stack)
    initiate(stack, limited, (70001,))

    refused = requests.post(
        stack.url("/v1/download/initiate"), json={"file_ids": [70002]}, headers=auth(limited), timeout=10
    )
    answers = [requests.get(stack.url("/v1/download/jobs"), headers=auth(limited), timeout=10) for _ in range(5)]

    assert refused.status_code == 429 and "max active jobs" in refused.json()["message"]
    assert answers[-1].status_code == 429 and answers[0].headers["RateLimit-Limit"] == "5"
    assert requests.get(stack.url("/v1/download/jobs"), headers=auth(other), timeout=10).status_code == 200
