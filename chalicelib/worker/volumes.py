"""Volumes: a job's result split into zips of at most BUNDLE_MAX_BYTES, as Google Takeout splits
an export into 1, 2, 4, 10 or 50 GB archives, and what a build of one volume needs.

The plan is a pure function of the files' sizes in the job's order (first fit), so a planning
retried after a crash, or run twice by a redelivered message, gives the same volumes; the
store keeps the first one written (jobs/volumes.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from chalicelib.aws.bundles import ARCHIVE_OVERHEAD_BYTES, MEMBER_OVERHEAD_BYTES
from chalicelib.models import PlannedVolume

GIB = 1024**3
# Measured (issue 19; scripts/capacity.py bundle_seconds_per_gib): a bundle builds at ~38 s per GiB
# on a 256 MB Lambda, which has ~0.15 of a vCPU. Lambda allots CPU in proportion to memory, one
# full vCPU at 1,769 MB (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html);
# the zip is written by one thread, so more memory than that buys no speed.
SECONDS_PER_GIB_AT_MEASURED = 38.0
MEASURED_MEMORY_MB = 256
ONE_VCPU_MEMORY_MB = 1769
MAX_MEMORY_MB = 10240  # Lambda's ceiling
MAX_TIMEOUT_SECONDS = 900  # Lambda's ceiling (15 minutes)
HEADROOM = 2  # a full volume must build in half the timeout


def plan_volumes(members: Sequence[tuple[int, int]], max_bytes: int) -> list[PlannedVolume]:
    """(file id, size) pairs, in the job's order, packed first-fit into volumes of at most `max_bytes`.

    Each file goes into the first volume it fits in, else opens a new one; a file larger than
    `max_bytes` on its own opens a volume nothing else fits in. Sizes count what the zip adds
    (aws/bundles.archive_bytes), so a volume's zip is never past the limit unless one file is.
    """
    contents: list[list[tuple[int, int]]] = []
    used: list[int] = []
    for file_id, size in members:
        cost = size + MEMBER_OVERHEAD_BYTES
        for index, taken in enumerate(used):
            if taken + cost <= max_bytes:
                contents[index].append((file_id, size))
                used[index] += cost
                break
        else:
            contents.append([(file_id, size)])
            used.append(ARCHIVE_OVERHEAD_BYTES + cost)
    return [
        PlannedVolume(number, tuple(file_id for file_id, _ in files), tuple(size for _, size in files))
        for number, files in enumerate(contents, start=1)
    ]


@dataclass(frozen=True)
class BuildSizing:
    """What a function building one volume of `volume_bytes` needs: memory and timeout."""

    memory_mb: int
    timeout_seconds: int


def build_seconds(volume_bytes: int, memory_mb: int) -> float:
    """Expected build time: the measured rate, scaled by the CPU share `memory_mb` buys (capped at one vCPU)."""
    cpu = min(memory_mb, ONE_VCPU_MEMORY_MB) / MEASURED_MEMORY_MB
    return volume_bytes / GIB * SECONDS_PER_GIB_AT_MEASURED / cpu


def sizing_for(volume_bytes: int, timeout_seconds: int = MAX_TIMEOUT_SECONDS) -> BuildSizing:
    """The least memory (a multiple of 64 MB, at least the measured 256 MB) that builds a full
    volume in 1/HEADROOM of `timeout_seconds`. Raises ValueError when even one vCPU cannot:
    the volume limit must come down (at 900 s and one vCPU, ~73 GiB)."""
    for memory_mb in range(MEASURED_MEMORY_MB, ONE_VCPU_MEMORY_MB + 64, 64):
        if HEADROOM * build_seconds(volume_bytes, memory_mb) <= timeout_seconds:
            return BuildSizing(memory_mb, timeout_seconds)
    fastest = math.ceil(HEADROOM * build_seconds(volume_bytes, ONE_VCPU_MEMORY_MB))
    raise ValueError(f"a volume of {volume_bytes} bytes needs {fastest} s at one vCPU; past the {timeout_seconds} s")
