"""Webhooks the dev stack really sends to a job begun by the client, checked with `verify_webhook`.

The shared dev stack signs with the CALLBACK_SIGNING_SECRET it wrote to its stack.env and allows
loopback callback URLs, so a receiver on 127.0.0.1 gets the event.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from delineate_client import AsyncClient, Client, WebhookVerificationError, verify_webhook

from tests.support.receiver import Delivery, WebhookReceiver


@pytest.fixture(scope="module")
def secret(dev_stack) -> str:
    return dev_stack.stack_env()["CALLBACK_SIGNING_SECRET"]


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def delivered(dev_stack):
    """(job id, the delivery) of one job.completed event for a job begun with `callback_url=`."""
    with WebhookReceiver() as receiver:
        with Client(dev_stack.base_url) as client:
            job = client.begin_download([70000], callback_url=receiver.url("/hooks/sync"))
        [delivery] = receiver.wait_for(1, timeout=30)
    return job.id, delivery


def with_header(delivery: Delivery, name: str, value: str) -> dict[str, str]:
    return {**delivery.headers, name.lower(): value}


def signature_parts(delivery: Delivery) -> tuple[str, str]:
    parts = dict(item.split("=", 1) for item in delivery.headers["delineate-signature"].split(","))
    return parts["t"], parts["v1"]


def test_begin_download_with_a_callback_url_gets_the_signed_event(delivered, secret):
    job_id, delivery = delivered
    event = verify_webhook(secret, delivery.headers, delivery.body)
    assert event["type"] == "job.completed" and event["data"]["jobId"] == job_id


def test_the_async_client_sends_callbackUrl_too(api, api_proxy, receiver, secret):  # noqa: N802
    async def begin() -> str:
        async with AsyncClient(api) as client:
            return (await client.begin_download([70007], callback_url=receiver.url("/hooks/async"))).id

    job_id = asyncio.run(begin())
    [post] = api_proxy.requests("POST", "/v1/download/initiate")
    assert json.loads(post.body) == {"file_ids": [70007], "callbackUrl": receiver.url("/hooks/async")}
    [delivery] = receiver.wait_for(1, timeout=30)
    assert verify_webhook(secret, delivery.headers, delivery.body)["data"]["jobId"] == job_id


def test_the_dedupe_id_is_the_signed_body_id_not_the_unsigned_header(delivered, secret):
    _, delivery = delivered
    forged = with_header(delivery, "Delineate-Event-Id", "evt_forged")
    event = verify_webhook(secret, forged, delivery.body)
    assert event["_eventId"] == json.loads(delivery.body)["id"] != "evt_forged"


@pytest.mark.parametrize(
    "shape",
    [
        "t=²,v1={v1}",  # a digit to str.isdigit, not to int()
        "t={arabic_t},v1={v1}",  # non-ASCII digits int() reads
        "t={t},v1={non_ascii}",  # hmac.compare_digest refuses non-ASCII str
        "t={t},v1={upper}",  # only lower-case hex, as the service writes it
        "t={t},v1={short}",
        "t={t},v1={v1},v1=zz",  # one malformed among good ones
    ],
)
def test_a_malformed_signature_header_raises_the_verification_error(delivered, secret, shape):
    _, delivery = delivered
    t, v1 = signature_parts(delivery)
    header = shape.format(
        t=t,
        v1=v1,
        arabic_t="".join(chr(0x0660 + int(digit)) for digit in t),
        non_ascii="é" * 64,
        upper=v1.upper(),
        short=v1[:-1],
    )
    with pytest.raises(WebhookVerificationError, match="malformed"):
        verify_webhook(secret, with_header(delivery, "Delineate-Signature", header), delivery.body)
    assert verify_webhook(secret, delivery.headers, delivery.body)  # the untouched header still verifies
