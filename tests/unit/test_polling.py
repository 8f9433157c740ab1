"""The one poll-with-deadline: returns the first truthy value, never sleeps past the deadline."""

from __future__ import annotations

import pytest

from chalicelib.polling import poll, wait_until


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_the_first_truthy_value():
    answers = iter([None, 0, "ready"])
    time = FakeTime()

    assert poll(lambda: next(answers), 10, sleep=time.sleep, clock=time.clock) == "ready"
    assert time.sleeps == [0.2, 0.2]


def test_the_interval_grows_to_its_cap_and_the_last_sleep_stops_at_the_deadline():
    time = FakeTime()

    result = poll(lambda: None, 2.0, interval=0.1, growth=2, max_interval=0.5, sleep=time.sleep, clock=time.clock)

    assert result is None
    assert time.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.3])
    assert time.now == pytest.approx(2.0)


def test_a_change_during_the_last_sleep_is_still_seen():
    time = FakeTime()

    assert poll(lambda: time.now >= 1.0 or None, 1.0, interval=5, sleep=time.sleep, clock=time.clock) is True


def test_wait_until_names_what_never_happened():
    with pytest.raises(TimeoutError, match="the thing"):
        wait_until(lambda: None, 0.05, interval=0.01, what="the thing")
