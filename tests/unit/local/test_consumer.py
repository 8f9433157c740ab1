"""The local consumer hands on what one receive took as an SQS fair queue would serve it."""

from __future__ import annotations

from chalicelib.local.consumer import fair_order


def message(group: str, n: int) -> dict:
    return {"MessageId": f"{group}-{n}", "Attributes": {"MessageGroupId": group}}


def test_a_quiet_group_is_served_before_a_noisy_groups_backlog():
    received = [message("big", n) for n in range(6)] + [message("small", 0), message("small", 1)]

    order = [m["MessageId"] for m in fair_order(received)]

    assert order[:4] == ["small-0", "big-0", "small-1", "big-1"]
    assert sorted(order) == sorted(m["MessageId"] for m in received)
