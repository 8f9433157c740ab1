"""How `wait` paces its status polls when the server does not hold them (a stage with
LONG_POLL_MAX_SECONDS=0 answers `?wait=`/`Prefer: wait` at once): Retry-After, else a growing
backoff capped at a few seconds, never a hot loop. Against the dev stack through the fault proxy.
"""

from __future__ import annotations

import asyncio

from delineate_client import AsyncClient, Client

from tests.support.faultproxy import Seen

SLOW_JOB = [70000 + 7 * n for n in range(14)]  # about 2 s of work on the test stack


def is_status(seen: Seen) -> bool:
    return seen.method == "GET" and seen.path.startswith("/v1/download/status/")


def gaps(polls: list[Seen]) -> list[float]:
    return [later.at - earlier.at for earlier, later in zip(polls, polls[1:], strict=False)]


def test_plain_polls_to_a_server_answering_at_once_without_retry_after_back_off(api, api_proxy):
    """`long_poll=0` asks for no hold; the proxy answers each poll from the real status at once, with an
    ETag and without Retry-After: the client must pace itself."""
    api_proxy.add(is_status, "long_poll", times=1000)
    with Client(api, long_poll=0) as client:
        job = client.begin_download(SLOW_JOB)
        job.wait(timeout=60)
    polls = api_proxy.requests("GET", f"/v1/download/status/{job.id}")
    assert job.status == "completed" and all(seen.header("Prefer") is None for seen in polls)
    assert min(gaps(polls)) >= 0.9, gaps(polls)  # never a hot loop
    assert len(polls) <= 8, gaps(polls)  # 1 s growing x1.5: a few polls for a job of a few seconds


def test_a_long_poll_the_server_did_not_hold_is_not_repeated_at_once(api, api_proxy):
    """Three 304s answered at once with `Preference-Applied: wait=0` and no Retry-After, as a stage
    that does not hold might: each is followed by a pause, not by the next poll straight away."""
    api_proxy.add(
        lambda seen: is_status(seen) and seen.header("If-None-Match") is not None,
        "respond",
        times=3,
        status=304,
        headers={"Preference-Applied": "wait=0", "ETag": '"stale"'},
    )

    async def scenario() -> str:
        async with AsyncClient(api) as client:
            job = await client.begin_download(SLOW_JOB)
            await job.wait(timeout=60)
            return job.id

    job_id = asyncio.run(scenario())
    polls = api_proxy.requests("GET", f"/v1/download/status/{job_id}")
    answered_at_once = [index for index, seen in enumerate(polls) if seen.fault == "respond"]
    assert len(answered_at_once) == 3
    after_each = gaps(polls[answered_at_once[0] : answered_at_once[-1] + 2])
    assert len(after_each) == 3 and min(after_each) >= 0.9, after_each
