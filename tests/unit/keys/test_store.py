"""API keys: the store on the jobs table (moto) and the Authenticator in front of it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

import chalicelib.api.auth
from chalicelib.api.auth import Authenticator, presented_key
from chalicelib.errors import DependencyUnavailable, Unauthorized
from chalicelib.keys.store import (
    PARTITION,
    InvalidKeyRequest,
    KeyStore,
    RevokeOutcome,
    StoredKey,
    hash_key,
    key_id_of,
    new_key,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingStore:
    """The real store, counting the GetItems authentication makes."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.gets = 0

    def get(self, key_id: str) -> StoredKey | None:
        self.gets += 1
        return self.store.get(key_id)


@pytest.fixture
def table(stack):
    return boto3.resource("dynamodb").Table(stack["JobsTableName"])


@pytest.fixture
def store(table) -> KeyStore:
    return KeyStore(table, clock=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc))


@pytest.fixture
def ticks() -> ManualClock:
    return ManualClock()


@pytest.fixture
def counting(store) -> CountingStore:
    return CountingStore(store)


@pytest.fixture
def authenticator(counting, ticks) -> Authenticator:
    return Authenticator(counting, cache_seconds=30, clock=ticks)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


# -- keys -----------------------------------------------------------------------


def test_a_key_embeds_its_id_and_256_random_bits():
    key_id, key = new_key()
    other_id, other = new_key()

    assert key.startswith(f"dlk_{key_id}_") and key_id_of(key) == key_id
    assert len(key_id) == 16 and len(key.split("_", 2)[2]) == 43  # token_urlsafe(32): 256 bits in 43 characters
    assert (key_id, key) != (other_id, other)


@pytest.mark.parametrize("text", ["", "dlk_", "dlk_0123456789abcdef_short", "xyz_0123456789abcdef_" + "a" * 43])
def test_text_that_is_not_a_key_has_no_id(text):
    assert key_id_of(text) is None


# -- store ----------------------------------------------------------------------


def test_created_key_is_stored_only_as_its_hash(store, table):
    issued = store.create("ci", rate_limit=50, max_active_jobs=3)

    (item,) = table.scan()["Items"]
    secret = issued.key.split("_", 2)[2]
    assert item["pk"] == PARTITION and item["sk"] == f"KEY#{issued.record.key_id}"
    assert item["keyHash"] == hashlib.sha256(issued.key.encode()).hexdigest()
    assert not any(secret in str(value) for value in item.values())
    assert "ttl" not in item  # a key lives until revoked
    assert (item["name"], item["rateLimit"], item["maxActiveJobs"]) == ("ci", 50, 3)
    assert issued.record.created_at == "2025-01-02T03:04:05Z"


def test_listing_shows_records_and_never_keys_or_hashes(store):
    issued = [store.create(f"client-{index}") for index in range(3)]

    documents = [key.to_document() for key in store.list(page_size=2)]  # two Query pages

    assert sorted(doc["id"] for doc in documents) == sorted(key.record.key_id for key in issued)
    assert set(documents[0]) == {"id", "name", "createdAt", "revokedAt", "rateLimit", "maxActiveJobs"}
    listed = repr(documents)
    for key in issued:
        assert key.key not in listed and hash_key(key.key) not in listed


def test_revoking_sets_revoked_at_once(table):
    moments = iter([datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, 0, 5, tzinfo=timezone.utc)])
    store = KeyStore(table, clock=lambda: next(moments))
    issued = store.create("ci")

    first = store.revoke(issued.record.key_id)
    again = KeyStore(table).revoke(issued.record.key_id)

    assert (first, again) == (RevokeOutcome.REVOKED, RevokeOutcome.ALREADY_REVOKED)
    assert store.get(issued.record.key_id).record.revoked_at == "2025-01-01T00:05:00Z"


def test_revoking_an_unknown_id_says_so(store):
    assert store.revoke("0123456789abcdef") is RevokeOutcome.NOT_FOUND


@pytest.mark.parametrize(
    ("name", "limits"),
    [("", {}), ("x" * 129, {}), ("a\nb", {}), ("ci", {"rate_limit": 0}), ("ci", {"max_active_jobs": -1})],
)
def test_unusable_names_and_limits_are_refused(store, name, limits):
    with pytest.raises(InvalidKeyRequest):
        store.create(name, **limits)


# -- authentication ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: {"authorization": f"Bearer {key}"},
        lambda key: {"Authorization": f"bearer  {key} "},
        lambda key: {"AUTHORIZATION": f"BEARER {key}"},
        lambda key: {"x-api-key": key},
        lambda key: {"X-API-Key": key, "Authorization": f"Bearer {key}"},
    ],
    ids=["bearer", "lowercase-scheme", "uppercase", "x-api-key", "both-agree"],
)
def test_a_created_key_authenticates_by_either_header(store, authenticator, headers):
    issued = store.create("ci", rate_limit=10)

    assert authenticator.authenticate(headers(issued.key)) == issued.record


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "an API key is required"),
        ({"accept": "application/json"}, "an API key is required"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "Bearer <API key>"),
        ({"authorization": "Bearer"}, "Bearer <API key>"),
        ({"authorization": "Bearer   "}, "Bearer <API key>"),
        ({"authorization": "Bearer not-a-key"}, "malformed API key"),
        ({"x-api-key": ""}, "malformed API key"),
        ({"x-api-key": "dlk_0123456789abcdef_tooshort"}, "malformed API key"),
        ({"x-api-key": "one", "authorization": "Bearer two"}, "different keys"),
    ],
)
def test_missing_or_malformed_keys_are_refused_without_a_lookup(authenticator, counting, headers, message):
    with pytest.raises(Unauthorized) as refused:
        authenticator.authenticate(headers)

    assert message in str(refused.value)
    assert refused.value.STATUS_CODE == 401 and refused.value.CHALLENGE.startswith("Bearer")
    assert counting.gets == 0


def test_an_unknown_key_and_a_wrong_secret_are_refused_alike(store, authenticator):
    issued = store.create("ci")
    _, unknown = new_key()
    forged = f"dlk_{issued.record.key_id}_{new_key()[1].split('_', 2)[2]}"

    messages = []
    for key in (unknown, forged):
        with pytest.raises(Unauthorized) as refused:
            authenticator.authenticate(bearer(key))
        messages.append(str(refused.value))

    assert messages == ["invalid API key", "invalid API key"]


def test_hashes_are_compared_in_constant_time(store, authenticator, monkeypatch):
    issued = store.create("ci")
    compared = []
    real_compare = hmac.compare_digest

    def compare_digest(a, b):
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(chalicelib.api.auth.hmac, "compare_digest", compare_digest)
    authenticator.authenticate(bearer(issued.key))

    assert compared == [(hash_key(issued.key), hash_key(issued.key))]


def test_a_hot_key_costs_one_read_per_cache_period(store, authenticator, counting, ticks):
    issued = store.create("ci")

    for _ in range(5):
        authenticator.authenticate(bearer(issued.key))
        ticks.advance(5)
    ticks.advance(5)  # 30 s since the first lookup
    authenticator.authenticate(bearer(issued.key))

    assert counting.gets == 2


def test_unknown_ids_are_cached_too(authenticator, counting):
    _, unknown = new_key()

    for _ in range(3):
        with pytest.raises(Unauthorized):
            authenticator.authenticate(bearer(unknown))

    assert counting.gets == 1


def test_a_revoked_key_is_refused_once_the_cache_expires(store, authenticator, ticks):
    issued = store.create("ci")
    authenticator.authenticate(bearer(issued.key))  # now cached

    store.revoke(issued.record.key_id)
    ticks.advance(29)
    still_cached = authenticator.authenticate(bearer(issued.key))
    ticks.advance(1)
    with pytest.raises(Unauthorized) as refused:
        authenticator.authenticate(bearer(issued.key))

    assert still_cached.key_id == issued.record.key_id  # within API_KEY_CACHE_SECONDS, at most 60
    assert str(refused.value) == "API key revoked"


def test_a_revoked_key_is_refused_at_once_when_not_cached(store, counting, ticks):
    issued = store.create("ci")
    store.revoke(issued.record.key_id)

    with pytest.raises(Unauthorized, match="revoked"):
        Authenticator(counting, cache_seconds=0, clock=ticks).authenticate(bearer(issued.key))


def test_the_cache_holds_a_bounded_number_of_keys(store, counting, ticks):
    keys = [store.create(f"client-{index}") for index in range(3)]
    authenticator = Authenticator(counting, cache_seconds=30, clock=ticks, max_entries=2)

    for issued in keys:
        authenticator.authenticate(bearer(issued.key))
    authenticator.authenticate(bearer(keys[0].key))  # the oldest was dropped for the third

    assert counting.gets == 4


def test_a_cache_longer_than_a_minute_is_refused(counting):
    with pytest.raises(ValueError):
        Authenticator(counting, cache_seconds=61)


def test_an_unreachable_table_is_a_503_not_a_pass():
    class Unreachable:
        def get(self, key_id):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(DependencyUnavailable):
        Authenticator(Unreachable()).authenticate(bearer(new_key()[1]))


def test_chalice_request_headers_work_as_they_come(store):
    from chalice.app import CaseInsensitiveMapping

    issued = store.create("ci")

    assert presented_key(CaseInsensitiveMapping({"x-api-key": issued.key})) == issued.key
