"""`make dev` semantics: one signal to the process group stops everything it started."""

from __future__ import annotations

from chalicelib.polling import wait_until
from tests.support.devstack import FAST_FILES, start_dev_stack


def test_sigint_stops_every_process_the_stack_started(tmp_path):
    stack = start_dev_stack(tmp_path, **{**FAST_FILES, "LOCAL_CONSUMERS": "2"})
    assert len(stack.leftover_pids()) >= 5  # runner, emulator, API, 2 consumers, sweeper

    stack.stop()

    wait_until(lambda: not stack.leftover_pids(), timeout=15, what="every process of the stack to exit")
    assert stack.leftover_pids() == []
