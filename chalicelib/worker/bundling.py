"""The bundle step: one zip of a job's available files, or, past BUNDLE_MAX_BYTES, several
("volumes", worker/volumes.py), each built by its own message.

A single bundle is claimed on the job item (jobs.JobStore.claim_bundle); each volume on its own
item (jobs/volumes.py), so a crashed build is retried alone, while the others stay built.
"""

from __future__ import annotations

import logging
import uuid

from chalicelib.aws.queue import MessageKind, MisaddressedMessage, WorkMessage, WorkQueue
from chalicelib.aws.storage import Storage
from chalicelib.config import Settings
from chalicelib.jobs import scheduling
from chalicelib.jobs.store import ClaimOutcome, JobStore
from chalicelib.jobs.volumes import VolumeClaim, VolumeRecord, VolumeStore
from chalicelib.models import (
    BuiltBundle,
    FileStatus,
    Job,
    JobStatus,
    PlannedVolume,
    result_key,
    result_prefix,
    source_key,
)
from chalicelib.worker import volumes

log = logging.getLogger("delineate.worker")


class Bundler:
    def __init__(self, store: JobStore, queue: WorkQueue, storage: Storage, settings: Settings) -> None:
        self._store, self._queue, self._storage, self._settings = store, queue, storage, settings
        self._volumes = VolumeStore(store.table, settings.job_ttl_seconds)

    def build(self, job: Job, claimant: str) -> None:
        """Every file counted: one zip built here, or, past BUNDLE_MAX_BYTES, a plan of volumes
        and one message per volume (build_volume), each built and retried on its own."""
        if job.status is not JobStatus.PROCESSING or not job.all_files_done:
            return
        results = self._store.file_results(job.job_id)
        recorded = [results[file_id] for file_id in job.file_ids if file_id in results]
        sizes = [  # an available file is recorded with the size S3 reported for it
            (result.file_id, result.size)
            for result in recorded
            if result.status is FileStatus.AVAILABLE and result.size is not None
        ]
        plan = volumes.plan_volumes(sizes, self._settings.bundle_max_bytes)
        if len(plan) > 1:
            self._plan_volumes(job, plan)
            return
        outcome = self._store.claim_bundle(job.job_id, claimant, self._settings.bundle_lease_seconds)
        if outcome is not ClaimOutcome.CLAIMED:
            log.info("bundle not built here", extra={"jobId": job.job_id, "outcome": outcome.value})
            return
        if not plan:
            self._store.complete(job.job_id, None, None)
            return
        # A redelivery of the claiming message may build concurrently (its
        # visibility lapsed mid-build); each build has its own key and the
        # first to complete the job publishes it.
        key = result_key(job.job_id, uuid.uuid4().hex)
        bundle = self._storage.write_bundle(key, _members(sizes))
        built = BuiltBundle(key, bundle.size, bundle.sha256, plan[0].file_ids)
        if not self._store.complete(job.job_id, key, bundle.size, bundle.sha256, (built,)):
            # Nobody will be handed this build: the job was cancelled or failed
            # meanwhile, or another build completed it first.
            self._storage.delete(key)
            return
        self._prune_orphans(job.job_id, {key})

    def _plan_volumes(self, job: Job, plan: list[PlannedVolume]) -> None:
        """Writes the plan (the same on every retry: volumes.plan_volumes is deterministic) and sends
        one message per volume; a repeat re-sends them all, and built volumes answer at once."""
        if not self._volumes.record_plan(job, plan):
            return  # the job closed meanwhile
        group = scheduling.group(job)
        self._queue.send_many(
            [WorkMessage(MessageKind.BUNDLE, job.job_id, group=group, volume=volume.number) for volume in plan]
        )
        log.info("bundle split into volumes", extra={"jobId": job.job_id, "volumes": len(plan)})

    def build_volume(self, job: Job, number: int, claimant: str) -> None:
        """Builds volume `number` under its own claim, records it (counted once), and completes
        the job when it finds every volume built: whoever does first wins the conditional write."""
        if job.status is not JobStatus.PROCESSING:
            return
        store = self._volumes
        claim = store.claim(job.job_id, number, claimant, self._settings.bundle_lease_seconds)
        if claim is VolumeClaim.UNKNOWN:
            raise MisaddressedMessage(f"job {job.job_id} has no volume {number}")
        if claim is VolumeClaim.CLAIMED:
            members = store.members(job.job_id, number) or []
            key = result_key(job.job_id, f"volume-{number}-{uuid.uuid4().hex}")
            bundle = self._storage.write_bundle(key, _members(members))
            if store.record_built(job.job_id, number, key, bundle.size, bundle.sha256) is not VolumeRecord.RECORDED:
                self._storage.delete(key)  # another build of this volume was recorded, or the job closed
                return
        elif claim is VolumeClaim.HELD_ELSEWHERE:
            log.info("volume not built here", extra={"jobId": job.job_id, "volume": number})
            return
        built = store.built(job.job_id)
        if built is None:
            return  # other volumes are still building; the last one recorded completes the job
        first = built[0]
        if self._store.complete(job.job_id, first.key, first.size, first.sha256, built):
            self._prune_orphans(job.job_id, {bundle.key for bundle in built})

    def _prune_orphans(self, job_id: str, keep: set[str]) -> None:
        """A build whose consumer died between upload and recording left an object nobody
        references; one still running deletes its own."""
        orphans = self._storage.prune(result_prefix(job_id), keep=keep)
        if orphans:
            log.info("orphaned bundle builds deleted", extra={"jobId": job_id, "keys": orphans})


def _members(sizes: list[tuple[int, int]]) -> list[tuple[str, str, int]]:
    """(archive name, source key, size) of each file going into a zip."""
    return [(f"{file_id}.zip", source_key(file_id), size) for file_id, size in sizes]
