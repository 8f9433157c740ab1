"""The capacity model's arithmetic: ceilings, the one that binds, and the plan for a bigger profile."""

from __future__ import annotations

from dataclasses import replace

from scripts.capacity import FALLBACK_MEASURES, Profile, Stack, binding, ceilings, plan_for, render


def stack(**changes) -> Stack:
    base = Stack(
        worker_concurrency=100,
        api_concurrency=100,
        sweeper_concurrency=1,
        api_rate=200,
        delay_min_s=10,
        delay_max_s=200,
        status_retry_after_s=2,
        long_poll_s=0,
        bundle_max_bytes=4 * 1024**3,
        worker_timeout_s=900,
        bundle_memory_mb=1769,
        active_shards=32,
        measures=dict(FALLBACK_MEASURES),
    )
    return replace(base, **changes)


def row(rows, name):
    return next(r for r in rows if r.name == name)


def test_the_profile_peak_is_users_times_jobs_spread_over_a_day_times_the_peak_factor():
    profile = Profile(users=8640, jobs_per_user_day=1, files_per_job=1000, peak_factor=5)

    assert profile.jobs_per_second == 0.5 and profile.files_per_second == 500


def test_worker_throughput_is_concurrency_over_the_work_each_file_holds():
    rows = ceilings(Profile(), stack(worker_concurrency=60))

    assert row(rows, "worker files/s").limit == 60 / FALLBACK_MEASURES["worker_seconds_per_file"]


def test_one_unsharded_index_partition_binds_first_at_the_default_profile():
    rows = ceilings(Profile(), stack(active_shards=1, worker_concurrency=200))

    assert binding(rows).name == "active-jobs index, hottest partition"


def test_held_long_polls_take_api_concurrency_and_none_when_the_hold_is_zero():
    held = row(ceilings(Profile(users=100_000), stack(long_poll_s=20)), "API concurrency (incl. held long-polls)")
    none = row(ceilings(Profile(users=100_000), stack(long_poll_s=0)), "API concurrency (incl. held long-polls)")

    assert held.need > 10 * none.need


def test_ten_times_the_users_fits_with_parameter_and_quota_changes_only():
    base = stack()
    bigger = Profile(users=100_000)

    planned, changes = plan_for(bigger, base)

    assert binding(ceilings(bigger, planned)).headroom >= 1, render(bigger, ceilings(bigger, planned))
    assert planned.active_shards == base.active_shards  # a code constant: not something the plan may change
    assert any(change.startswith("parameter WorkerMaximumConcurrency") for change in changes)
    # Everything else it may ask is a quota or the table's warm throughput: configuration, never code.
    assert all(change.startswith(("parameter ", "quota ", "table warm throughput ")) for change in changes), changes


def test_the_report_names_the_binding_ceiling_and_what_raises_it():
    text = render(Profile(), ceilings(Profile(), stack(worker_concurrency=10)), markdown=True)

    assert "DOES NOT FIT" in text and "'worker files/s'" in text and "WorkerMaximumConcurrency" in text


def test_the_worker_builds_a_full_default_volume_within_half_its_timeout():
    """worker/volumes.sizing_for: 2x headroom over the measured build rate, at the packaged memory."""
    import json
    from pathlib import Path

    from chalicelib.config import Settings
    from chalicelib.worker.volumes import sizing_for

    stage = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())["stages"]["prod"]
    worker = stage["lambda_functions"]["process_work"]
    volume = Settings.from_env({}).bundle_max_bytes

    needed = sizing_for(volume, timeout_seconds=worker["lambda_timeout"])

    assert worker["lambda_memory_size"] >= needed.memory_mb


def test_the_default_prod_parameters_serve_the_default_profile_and_ten_times_it_needs_no_code_change():
    from pathlib import Path

    from scripts.capacity import ROOT, load_stack

    packaged = load_stack(None, ROOT / ".chalice" / "config.json", Path("/nonexistent"))  # the bench's fallbacks
    rows = ceilings(Profile(), packaged)
    planned, changes = plan_for(Profile(users=100_000), packaged)

    assert binding(rows).headroom >= 1, render(Profile(), rows)
    assert binding(ceilings(Profile(users=100_000), planned)).headroom >= 1
    assert all(change.startswith(("parameter ", "quota ", "table warm throughput")) for change in changes), changes
