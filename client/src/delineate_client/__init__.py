"""Client library for the Delineate asynchronous download service.

from delineate_client import Client

with Client("http://127.0.0.1:8000") as client:
    job = client.begin_download([70000, 70007])
    result = job.wait().download("bundle.zip")
"""

from ._async import AsyncClient, AsyncDownloadJob
from ._common import DEFAULT_URL, Downloaded, WaitTimeout
from ._sync import Client, DownloadJob
from ._transport import RetryPolicy
from .errors import (
    ApiError,
    DelineateError,
    Forbidden,
    IntegrityError,
    InvalidToken,
    JobCancelled,
    JobError,
    JobFailed,
    JobNotFound,
    NothingAvailable,
    RateLimited,
    ServiceUnavailable,
    SeveralBundles,
    Unauthorized,
    UnexpectedResponse,
    WebhookVerificationError,
)
from .webhooks import verify_webhook

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "AsyncDownloadJob",
    "Client",
    "DelineateError",
    "DownloadJob",
    "Downloaded",
    "Forbidden",
    "IntegrityError",
    "InvalidToken",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "NothingAvailable",
    "RateLimited",
    "RetryPolicy",
    "ServiceUnavailable",
    "SeveralBundles",
    "Unauthorized",
    "UnexpectedResponse",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
]
