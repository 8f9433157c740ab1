"""API keys: how they look, how they are stored, and the store on the jobs table.

A key is `dlk_<id>_<secret>`:
  id      16 hex characters (64 random bits), public, names the key in listings
          and lets a request find its record with one GetItem;
  secret  `secrets.token_urlsafe(32)`: 256 random bits, shown once at creation.

Only SHA-256 of the whole key is stored. A plain, fast, unsalted hash is right
here, unlike for passwords: slow salted KDFs (bcrypt, scrypt, argon2) exist to
make guessing low-entropy secrets expensive after a leak of the hashes, but a
uniformly random 256-bit secret cannot be guessed or found in a precomputed
table at any hashing speed. A fast hash keeps verification at microseconds on
every request, where a KDF would add tens of milliseconds to each one.

Items live in the jobs table under one partition, so listing is a Query:
  pk=APIKEY  sk=KEY#<id>   name, keyHash, createdAt, [revokedAt], [rateLimit], [maxActiveJobs]
They carry no `ttl`: a key lives until it is revoked, and a revoked one stays
as the record of who held it.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code, query_items

KEY_PREFIX = "dlk"
PARTITION = "APIKEY"
_SK_PREFIX = "KEY#"
_ID_BYTES = 8
_SECRET_BYTES = 32
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet.
_KEY_PATTERN = re.compile(r"^dlk_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
_MAX_NAME = 128
_CREATE_ATTEMPTS = 3
# Attributes a listing reads: never keyHash, so no key material leaves the table.
_LISTED = ("keyId", "#name", "createdAt", "revokedAt", "rateLimit", "maxActiveJobs")


class InvalidKeyRequest(ValueError):
    """A name or limit the store will not accept."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def hash_key(key: str) -> str:
    """Hex SHA-256 of the whole presented key (see the module docstring for why a plain hash)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, full key) from the operating system's CSPRNG."""
    key_id = secrets.token_hex(_ID_BYTES)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def key_id_of(key: str) -> str | None:
    """The id embedded in a well-formed key; None for anything else (no lookup is worth making)."""
    match = _KEY_PATTERN.match(key)
    return match.group("id") if match else None


def is_key_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


@dataclass(frozen=True)
class ApiKey:
    """What the service knows about a key, without its secret or hash."""

    key_id: str
    name: str
    created_at: str
    revoked_at: str | None = None
    rate_limit: int | None = None  # requests per rate-limit window; None: the service default
    max_active_jobs: int | None = None  # non-terminal jobs at once; None: unlimited

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.key_id,
            "name": self.name,
            "createdAt": self.created_at,
            "revokedAt": self.revoked_at,
            "rateLimit": self.rate_limit,
            "maxActiveJobs": self.max_active_jobs,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "ApiKey":
        return cls(
            key_id=item["keyId"],
            name=item["name"],
            created_at=item["createdAt"],
            revoked_at=item.get("revokedAt"),
            rate_limit=_optional_int(item.get("rateLimit")),
            max_active_jobs=_optional_int(item.get("maxActiveJobs")),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)  # DynamoDB numbers arrive as Decimal


@dataclass(frozen=True)
class StoredKey:
    """A key's record and its hash: what authentication compares against."""

    record: ApiKey
    key_hash: str


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the only moment its full value exists outside the client."""

    record: ApiKey
    key: str


class RevokeOutcome(enum.Enum):
    REVOKED = "revoked"
    ALREADY_REVOKED = "already revoked"
    NOT_FOUND = "not found"


def _check_limits(name: str, rate_limit: int | None, max_active_jobs: int | None) -> None:
    if not name.strip() or len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidKeyRequest(f"name must be 1-{_MAX_NAME} printable characters")
    for label, value in (("rate limit", rate_limit), ("max active jobs", max_active_jobs)):
        if value is not None and value < 1:
            raise InvalidKeyRequest(f"{label} must be >= 1")


class KeyStore:
    """API key records on the jobs table (a boto3 Table resource). Raises botocore errors as they come."""

    def __init__(self, table: Any, clock: Callable[[], datetime] = _utc_now) -> None:
        self._table = table
        self._clock = clock

    def create(self, name: str, rate_limit: int | None = None, max_active_jobs: int | None = None) -> IssuedKey:
        """Writes a new key's record; `attribute_not_exists` keeps an id collision from overwriting a key."""
        _check_limits(name, rate_limit, max_active_jobs)
        for _ in range(_CREATE_ATTEMPTS):
            key_id, key = new_key()
            record = ApiKey(key_id, name, _iso(self._clock()), None, rate_limit, max_active_jobs)
            try:
                self._table.put_item(
                    Item=self._item(record, hash_key(key)), ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # 64 random bits collided: astronomically rare, so simply draw again
                raise
            return IssuedKey(record, key)
        raise RuntimeError(f"no free key id after {_CREATE_ATTEMPTS} attempts")

    def get(self, key_id: str) -> StoredKey | None:
        """One strongly consistent GetItem.

        Consistent, because a key used right after `keys create` must be found, and a
        miss would be cached as unknown; with the Authenticator's cache in front, the
        doubled read cost is paid once per key per cache period, not per request.
        """
        item = self._table.get_item(Key=self._key(key_id), ConsistentRead=True).get("Item")
        if item is None:
            return None
        return StoredKey(ApiKey.from_item(item), item["keyHash"])

    def revoke(self, key_id: str) -> RevokeOutcome:
        """Sets revokedAt once; a second revoke keeps the first time."""
        try:
            self._table.update_item(
                Key=self._key(key_id),
                UpdateExpression="SET revokedAt = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revokedAt)",
                ExpressionAttributeValues={":now": _iso(self._clock())},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return RevokeOutcome.ALREADY_REVOKED if self.get(key_id) else RevokeOutcome.NOT_FOUND
        return RevokeOutcome.REVOKED

    def list(self, page_size: int | None = None) -> Iterator[ApiKey]:
        """Every key, in id order, one Query page at a time; the hash is never read."""
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(PARTITION) & Key("sk").begins_with(_SK_PREFIX),
            "ProjectionExpression": ", ".join(_LISTED),
            "ExpressionAttributeNames": {"#name": "name"},  # `name` is a DynamoDB reserved word
        }
        if page_size is not None:
            query["Limit"] = page_size
        return (ApiKey.from_item(item) for item in query_items(self._table, query))

    @staticmethod
    def _key(key_id: str) -> dict[str, str]:
        return {"pk": PARTITION, "sk": f"{_SK_PREFIX}{key_id}"}

    def _item(self, record: ApiKey, key_hash: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            **self._key(record.key_id),
            "keyId": record.key_id,
            "name": record.name,
            "keyHash": key_hash,
            "createdAt": record.created_at,
        }
        if record.rate_limit is not None:
            item["rateLimit"] = record.rate_limit
        if record.max_active_jobs is not None:
            item["maxActiveJobs"] = record.max_active_jobs
        return item
