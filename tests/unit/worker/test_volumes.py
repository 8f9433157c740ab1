"""Volume planning (first fit in file order) and the memory a volume's build needs."""

from __future__ import annotations

import pytest

from chalicelib.aws.bundles import MEMBER_OVERHEAD_BYTES, archive_bytes
from chalicelib.worker.volumes import GIB, plan_volumes, sizing_for

LIMIT = 10_000


def contents(plan) -> list[tuple[int, ...]]:
    return [volume.file_ids for volume in plan]


def test_files_go_first_fit_in_file_order_so_a_later_small_file_fills_an_earlier_gap():
    # Given 6,000 + 6,000 cannot share a volume, but 6,000 + 3,000 can
    members = [(1, 6_000), (2, 6_000), (3, 3_000)]

    plan = plan_volumes(members, LIMIT)

    assert contents(plan) == [(1, 3), (2,)]
    assert [volume.number for volume in plan] == [1, 2]
    assert plan[0].sizes == (6_000, 3_000)


def test_a_file_larger_than_the_limit_gets_a_volume_of_its_own_and_nothing_joins_it():
    plan = plan_volumes([(1, 100), (2, 50_000), (3, 100)], LIMIT)

    assert contents(plan) == [(1, 3), (2,)]


def test_every_planned_volume_but_a_lone_oversized_file_fits_the_limit_with_the_zip_overhead():
    members = [(file_id, 700 + 97 * file_id) for file_id in range(1, 40)]

    plan = plan_volumes(members, LIMIT)

    assert sorted(file_id for volume in plan for file_id in volume.file_ids) == list(range(1, 40))
    assert all(archive_bytes(volume.sizes) <= LIMIT for volume in plan)


def test_planning_again_gives_the_same_volumes():
    members = [(file_id, (file_id * 7919) % 5_000) for file_id in range(100)]

    assert plan_volumes(members, LIMIT) == plan_volumes(list(members), LIMIT)


def test_no_available_file_plans_no_volume_and_a_small_job_plans_one():
    assert plan_volumes([], LIMIT) == []
    assert contents(plan_volumes([(1, 10), (2, 10)], LIMIT)) == [(1, 2)]


def test_the_limit_counts_what_the_zip_adds_per_member():
    exactly = LIMIT - archive_bytes([]) - 2 * MEMBER_OVERHEAD_BYTES
    assert len(plan_volumes([(1, exactly // 2), (2, exactly - exactly // 2)], LIMIT)) == 1
    assert len(plan_volumes([(1, exactly // 2), (2, exactly - exactly // 2 + 1)], LIMIT)) == 2


def test_a_full_default_volume_needs_320_mb_to_build_in_half_of_a_300_s_timeout():
    # 38 s/GiB at 256 MB: 4 GiB takes 152 s, 304 s with headroom; 320 MB (1.25x the CPU) takes 243 s.
    sizing = sizing_for(4 * GIB, timeout_seconds=300)

    assert (sizing.memory_mb, sizing.timeout_seconds) == (320, 300)
    assert sizing_for(1 * GIB, timeout_seconds=300).memory_mb == 256


def test_a_volume_no_single_vcpu_can_build_in_time_is_refused():
    # One vCPU (1,769 MB) builds at 38 x 256 / 1769 = 5.5 s/GiB: 100 GiB x 2 is past 900 s.
    with pytest.raises(ValueError, match="one vCPU"):
        sizing_for(100 * GIB)
