"""Storage: a signed URL is reused briefly, never past a tenth of its life, and the memo stays bounded."""

from __future__ import annotations

from chalicelib.aws import storage
from chalicelib.aws.storage import PRESIGN_REUSE_SECONDS, Storage


class CountingS3:
    def __init__(self) -> None:
        self.signed = 0

    def generate_presigned_url(self, operation: str, Params: dict, ExpiresIn: int) -> str:  # noqa: N803 - boto3's names
        self.signed += 1
        return f"https://signed/{Params['Key']}?n={self.signed}&expires={ExpiresIn}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Storage, CountingS3, Clock]:
    s3, clock = CountingS3(), Clock()
    return Storage(s3, "bucket", clock=clock), s3, clock


def test_a_url_is_reused_within_the_window_and_signed_afresh_after_it():
    store, s3, clock = make()
    first = store.presign("downloads/a.zip", 900, filename="a.zip")

    clock.now += PRESIGN_REUSE_SECONDS - 1
    assert store.presign("downloads/a.zip", 900, filename="a.zip") == first

    clock.now += 1
    assert store.presign("downloads/a.zip", 900, filename="a.zip") != first
    assert s3.signed == 2


def test_a_short_lived_url_is_reused_for_at_most_a_tenth_of_its_life():
    store, s3, clock = make()
    store.presign("downloads/a.zip", 60)

    clock.now += 6
    store.presign("downloads/a.zip", 60)

    assert s3.signed == 2


def test_another_object_filename_or_expiry_gets_its_own_signature():
    store, s3, _ = make()
    urls = {
        store.presign("downloads/a.zip", 900),
        store.presign("downloads/b.zip", 900),
        store.presign("downloads/a.zip", 900, filename="a.zip"),
        store.presign("downloads/a.zip", 600),
    }

    assert len(urls) == 4 and s3.signed == 4


def test_the_memo_keeps_only_the_most_recent_urls(monkeypatch):
    monkeypatch.setattr(storage, "_PRESIGN_MEMO_SIZE", 3)
    store, s3, _ = make()
    for name in "abcd":
        store.presign(f"downloads/{name}.zip", 900)

    store.presign("downloads/d.zip", 900)  # still held
    store.presign("downloads/a.zip", 900)  # dropped as the oldest: signed again

    assert s3.signed == 5
