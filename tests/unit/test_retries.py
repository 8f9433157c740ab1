"""A failed work message comes back after a short delay that doubles per receive, capped, jittered."""

from __future__ import annotations

import pytest

from chalicelib.retries import backoff_seconds


def upper(low: float, high: float) -> float:
    return high


def lower(low: float, high: float) -> float:
    return low


def test_the_delay_doubles_with_each_receive_up_to_the_cap():
    assert [backoff_seconds(receives, 1, 60, upper) for receives in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_jitter_draws_from_the_upper_half_so_the_delay_still_grows():
    assert [backoff_seconds(receives, 2, 60, lower) for receives in range(1, 5)] == [1, 2, 4, 8]


@pytest.mark.parametrize("receives", [1, 3, 10])
def test_whole_seconds_as_sqs_takes_them_never_above_the_cap(receives):
    delay = backoff_seconds(receives, 0.3, 5, upper)

    assert isinstance(delay, int) and 1 <= delay <= 5


def test_a_zero_base_retries_at_once():
    assert backoff_seconds(4, 0, 60) == 0
