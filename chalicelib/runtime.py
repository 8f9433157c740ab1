"""The process's wiring: settings, AWS clients and services, built lazily and once.

Handlers call these accessors instead of building clients at import time, so a
Lambda container reuses its clients across invocations and tests can swap the
whole graph with `override(...)` or rebuild it from a fresh environment with
`reset()`. Each role (api, limiter, worker) has one set of clients with its
timeouts, from the process's one boto3 Session, and a client is built only when
first called: a cold start that answers GET / builds none (chalicelib/aws/clients.py).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from chalicelib import logs
from chalicelib.api.auth import Authenticator
from chalicelib.api.ratelimit import RateLimiter
from chalicelib.api.service import DownloadService
from chalicelib.aws import tracing
from chalicelib.aws.clients import (
    WORKER_CONFIG,
    AwsClients,
    api_config,
    limiter_config,
    make_clients,
    reset_session,
    secret_string,
)
from chalicelib.aws.queue import WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.config import Settings, get_settings
from chalicelib.jobs.callback_slots import WebhookSlots
from chalicelib.jobs.callbacks import CallbackStore
from chalicelib.jobs.owners import OwnerJobs
from chalicelib.jobs.store import JobStore
from chalicelib.keys.store import KeyStore
from chalicelib.webhooks.delivery import (
    JobStoreWithWebhooks,
    NoSigningSecret,
    SweepingJobStoreWithWebhooks,
    Webhooks,
)
from chalicelib.webhooks.events import RetrySchedule
from chalicelib.webhooks.sender import WebhookSender
from chalicelib.worker.processing import Worker
from chalicelib.worker.sweeper import Sweeper

_lock = threading.RLock()  # factories build their own dependencies
_cache: dict[str, Any] = {}


def _build(name: str, factory: Callable[[], Any]) -> Any:
    with _lock:
        if name not in _cache:
            _cache[name] = factory()
        return _cache[name]


def settings() -> Settings:
    return _build("settings", get_settings)


def _instrument() -> None:
    """Logging and X-Ray patching happen before the first boto3 client exists."""
    logs.configure()
    tracing.configure()


def _clients(role: str) -> AwsClients:
    """The clients of one role ("api", "limiter", "worker"), each with its timeouts; built on first use."""

    def factory() -> AwsClients:
        _instrument()
        timeout_ms = settings().request_timeout_ms
        if role == "api":
            return make_clients(api_config(timeout_ms))
        if role == "limiter":
            return make_clients(limiter_config(timeout_ms))
        return make_clients(WORKER_CONFIG)

    return _build(f"clients:{role}", factory)


def _parts(role: str) -> tuple[JobStore, WorkQueue, Storage]:
    def factory() -> tuple[JobStore, WorkQueue, Storage]:
        current = settings()
        clients = _clients(role)
        table = clients.dynamodb.Table(current.jobs_table)
        store = JobStoreWithWebhooks(table, current.job_ttl_seconds)
        queue = WorkQueue(clients.sqs, current.work_queue_url)
        storage = Storage(clients.s3, current.bucket)
        # Only the worker delivers, so only it reads the signing secret.
        sender = _signing_sender if role == "worker" else None
        store.webhooks = Webhooks(CallbackStore(table), store, queue, current, sender, slots=WebhookSlots(table))
        return store, queue, storage

    return _build(f"parts:{role}", factory)


def _webhooks(role: str) -> Webhooks | None:
    store = _parts(role)[0]
    return store.webhooks if isinstance(store, JobStoreWithWebhooks) else None


def _signing_sender() -> WebhookSender:
    """The dev stack passes the secret itself; a cloud worker reads it from Secrets Manager on first use."""
    current = settings()
    secret = current.callback_signing_secret
    if not secret and current.callback_signing_secret_arn:
        secret = secret_string(current.callback_signing_secret_arn)
    if not secret:
        raise NoSigningSecret("set CALLBACK_SIGNING_SECRET or CALLBACK_SIGNING_SECRET_ARN to deliver webhooks")
    schedule = RetrySchedule(
        max_attempts=current.callback_max_attempts, base_seconds=current.callback_retry_base_seconds
    )
    return WebhookSender(
        secret,
        allow_private=current.callback_allow_private,
        schedule=schedule,
        attempt_seconds=current.callback_attempt_seconds,
    )


def _api_table() -> Any:
    """The jobs table as the API reads it (key records, the owner-jobs index)."""
    return _build("api_table", lambda: _clients("api").dynamodb.Table(settings().jobs_table))


def service() -> DownloadService:
    def factory() -> DownloadService:
        return DownloadService(*_parts("api"), settings(), owner_jobs=OwnerJobs(_api_table()))

    return _build("service", factory)


def authenticator() -> Authenticator:
    return _build("authenticator", lambda: Authenticator(KeyStore(_api_table()), settings().api_key_cache_seconds))


def worker() -> Worker:
    return _build("worker", lambda: Worker(*_parts("worker"), settings(), webhooks=_webhooks("worker")))


def sweeper() -> Sweeper:
    def factory() -> Sweeper:
        _, queue, _ = _parts("worker")  # instruments the process, too
        current = settings()
        table = _clients("worker").dynamodb.Table(current.jobs_table)
        sweeping = SweepingJobStoreWithWebhooks(table, current.job_ttl_seconds)
        sweeping.webhooks = _webhooks("worker")
        return Sweeper(sweeping, queue, current, sweeping.webhooks)

    return _build("sweeper", factory)


def rate_limiter() -> RateLimiter:
    def factory() -> RateLimiter:
        current = settings()
        table = _clients("limiter").dynamodb.Table(current.jobs_table)
        return RateLimiter(table, current.rate_limit_max_requests, current.rate_limit_window_ms)

    return _build("rate_limiter", factory)


def override(**objects: Any) -> None:
    """Tests: pin `settings`, `service`, `worker` or `sweeper` to given objects."""
    with _lock:
        _cache.update(objects)


def reset() -> None:
    with _lock:
        _cache.clear()
    get_settings.cache_clear()
    reset_session()
