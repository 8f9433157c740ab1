"""Symlinks planted where the client writes: the `.part` file and the final path.

A `.part` file is created exclusively and never through a symlink (O_EXCL | O_NOFOLLOW), a leftover is
reopened with O_NOFOLLOW, and the finished file replaces whatever is at the final path (os.replace),
so a link planted by someone else neither receives the bytes nor survives as the result.
"""

from __future__ import annotations

import hashlib

from delineate_client import Client

from tests.client.test_library import completed_job

PRECIOUS = b"someone else's file, not to be touched\n"


def test_a_symlink_at_the_part_path_is_not_written_through(api, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(PRECIOUS)
    target = tmp_path / "bundle.zip"
    with Client(api) as client:
        job = completed_job(client)
        part = tmp_path / f"bundle.zip.{job.document['sha256'][:16]}.part"
        part.symlink_to(victim)
        result = job.download(target)
    assert victim.read_bytes() == PRECIOUS
    assert not target.is_symlink() and result.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert result.sha256 == job.document["sha256"] and not part.exists() and not part.is_symlink()


def test_a_symlink_at_the_part_path_of_a_file_without_digest_is_not_written_through(api, tmp_path):
    """Per-file entries announce no SHA-256, so their `.part` is `<name>.part` and is created anew."""
    victim = tmp_path / "victim"
    victim.write_bytes(PRECIOUS)
    (tmp_path / "files").mkdir()
    with Client(api) as client:
        job = completed_job(client, [70000])
        (tmp_path / "files" / "70000.zip.part").symlink_to(victim)
        [result] = job.download_files(tmp_path / "files")
    assert victim.read_bytes() == PRECIOUS
    assert not result.path.is_symlink() and result.size == result.path.stat().st_size


def test_a_symlink_at_the_final_path_is_replaced_not_followed(api, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(PRECIOUS)
    target = tmp_path / "bundle.zip"
    target.symlink_to(victim)
    with Client(api) as client:
        result = completed_job(client).download(target)
    assert victim.read_bytes() == PRECIOUS
    assert not target.is_symlink() and target.stat().st_size == result.size
