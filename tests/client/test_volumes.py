"""The library and the CLI download every zip of a job the service split (BUNDLE_MAX_BYTES), and check each."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from delineate_client import Client, SeveralBundles

from chalicelib.local.samples import sample_zip
from tests.client.test_cli import run
from tests.support.devstack import FAST_FILES, start_dev_stack

FILES = [70063, 70070, 70056]  # two volumes under 500,000 bytes: [70063, 70056] and [70070]


@pytest.fixture(scope="module")
def split_url(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("client-volumes"), **FAST_FILES, BUNDLE_MAX_BYTES="500000")
    yield stack.base_url
    stack.stop()


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_download_bundles_saves_each_volume_beside_the_others_checked(split_url, tmp_path):
    with Client(split_url) as client:
        job = client.begin_download(FILES).wait(timeout=60)

        results = job.download_bundles(tmp_path / "export.zip")

    assert [result.path.name for result in results] == ["export-1-of-2.zip", "export-2-of-2.zip"]
    announced = job.document["bundles"]
    for result, bundle in zip(results, announced, strict=True):
        content = result.path.read_bytes()
        assert (result.size, result.sha256) == (len(content), hashlib.sha256(content).hexdigest())
        assert (result.size, result.sha256) == (bundle["size"], bundle["sha256"])
        assert members(result.path) == {f"{f}.zip": sample_zip(f) for f in bundle["fileIds"]}
    assert not list(tmp_path.glob("*.part"))


def test_download_of_a_split_job_says_to_use_download_bundles(split_url, tmp_path):
    with Client(split_url) as client:
        job = client.begin_download(FILES).wait(timeout=60)

        with pytest.raises(SeveralBundles, match="download_bundles"):
            job.download(tmp_path / "one.zip")

    assert list(tmp_path.iterdir()) == []


def test_the_cli_saves_name_1_of_2_and_name_2_of_2_and_prints_each(split_url, tmp_path):
    done = run(split_url, "download", *map(str, FILES), "-o", "takeout.zip", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    saved = sorted(path.name for path in tmp_path.iterdir())
    assert saved == ["takeout-1-of-2.zip", "takeout-2-of-2.zip"]
    printed = [line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("sha256: ")]
    assert printed == [hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in saved]
    together = {**members(tmp_path / saved[0]), **members(tmp_path / saved[1])}
    assert together == {f"{f}.zip": sample_zip(f) for f in FILES}


def test_the_async_client_downloads_every_volume_too(split_url, tmp_path):
    import asyncio

    from delineate_client import AsyncClient

    async def scenario():
        async with AsyncClient(split_url) as client:
            job = await (await client.begin_download(FILES)).wait(timeout=60)
            return job.document["bundles"], await job.download_bundles(tmp_path / "async.zip")

    announced, results = asyncio.run(scenario())

    assert [result.path.name for result in results] == ["async-1-of-2.zip", "async-2-of-2.zip"]
    assert [(r.size, r.sha256) for r in results] == [(b["size"], b["sha256"]) for b in announced]
