"""Per-owner webhook slots: a few attempts of one owner in flight, a dead holder's slot freed by its lease."""

from __future__ import annotations

from chalicelib.jobs.callback_slots import WebhookSlots


def test_an_owner_holds_at_most_its_capacity_and_others_are_not_counted(deployed, clock):
    slots = WebhookSlots(deployed.table, clock=clock)

    held = [slots.take("alice", f"job-{index}#1", capacity=2, lease_seconds=30) for index in range(3)]

    assert [slot is not None for slot in held] == [True, True, False]
    assert slots.take("bob", "job-9#1", capacity=2, lease_seconds=30) is not None
    assert slots.take(None, "job-8#1", capacity=2, lease_seconds=30) is not None  # no API key: one shared owner


def test_a_released_slot_is_taken_again_and_a_stale_release_frees_nothing(deployed, clock):
    slots = WebhookSlots(deployed.table, clock=clock)
    first = slots.take("alice", "job-1#1", capacity=1, lease_seconds=30)
    assert first is not None

    slots.release(first)
    second = slots.take("alice", "job-2#1", capacity=1, lease_seconds=30)
    slots.release(first)  # a holder whose lease ran out must not free the slot another one holds now

    assert second is not None
    assert slots.take("alice", "job-3#1", capacity=1, lease_seconds=30) is None


def test_a_dead_holders_slot_is_free_once_its_lease_runs_out(deployed, clock):
    slots = WebhookSlots(deployed.table, clock=clock)
    assert slots.take("alice", "job-1#1", capacity=1, lease_seconds=30) is not None  # its worker dies

    clock.advance(29)
    assert slots.take("alice", "job-2#1", capacity=1, lease_seconds=30) is None
    clock.advance(1)
    assert slots.take("alice", "job-2#1", capacity=1, lease_seconds=30) is not None
