"""The S3 object store against a real S3-compatible server (moto's, in its own process)."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from labledger.archive.objects import ObjectStore, open_object_store
from labledger.archive.s3 import S3Store
from labledger.archive.store import BlobStore, StoredBlob, Sweep
from labledger.errors import NotFound, StorageError
from labledger.server.lab import result_store
from labledger.settings import Settings
from labledger_fixtures import S3Server


@pytest.fixture
def s3_store(s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.create_bucket()
    store = result_store(Settings(data_dir=tmp_path, blob_url=f"s3://{bucket}/lab/files"))
    assert isinstance(store, S3Store)
    store.create()
    return store


def _spooled(store: ObjectStore, data: bytes) -> tuple[Path, str]:
    path = store.tmp / f"upload-{len(data)}"
    path.write_bytes(data)
    return path, blake3.blake3(data).hexdigest()


def test_both_stores_satisfy_the_protocol(s3_store: S3Store, tmp_path: Path) -> None:
    assert isinstance(s3_store, ObjectStore)
    assert isinstance(BlobStore(tmp_path / "local"), ObjectStore)
    assert isinstance(result_store(Settings(data_dir=tmp_path)), BlobStore)
    assert isinstance(open_object_store(tmp_path / "results"), BlobStore)


def test_a_multipart_upload_reads_back_whole_and_in_ranges(s3_store: S3Store) -> None:
    data = os.urandom(40 << 20)  # larger than a part: sent as a multipart upload
    path, digest = _spooled(s3_store, data)
    stored = s3_store.adopt(path, digest)
    assert stored.added and stored.size == len(data)
    assert not path.exists(), "the spooled upload is removed once stored"
    assert s3_store.has(digest) and s3_store.size_of(digest) == len(data)
    assert b"".join(s3_store.iter_chunks(digest)) == data
    assert b"".join(s3_store.iter_chunks(digest, 1000, 1999)) == data[1000:2000]
    assert b"".join(s3_store.iter_chunks(digest, len(data) - 5)) == data[-5:]
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.key_of(digest))
    assert head["Metadata"]["blake3"] == digest
    assert s3_store.key_of(digest).startswith("lab/files/objects/")


def test_content_is_kept_once_listed_and_removed(s3_store: S3Store, tmp_path: Path) -> None:
    digests = set()
    for i in range(3):
        path, digest = _spooled(s3_store, f"content {i}".encode())
        s3_store.adopt(path, digest)
        digests.add(digest)
    again, digest = _spooled(s3_store, b"content 0")
    assert s3_store.adopt(again, digest).added is False
    source = tmp_path / "kept.txt"
    source.write_bytes(b"a file that stays")
    put = s3_store.put_file(source)
    assert source.exists() and put.added
    digests.add(put.digest)
    assert set(s3_store.iter_digests()) == digests
    absent = ["a" * 64, "b" * 64]
    assert s3_store.missing([absent[0], *sorted(digests), absent[1]]) == absent
    copy = tmp_path / "copy.txt"
    s3_store.copy_to(put.digest, copy)
    assert copy.read_bytes() == b"a file that stays"
    s3_store.remove(put.digest)
    assert not s3_store.has(put.digest) and s3_store.size_of(put.digest) is None
    with pytest.raises(NotFound):
        b"".join(s3_store.iter_chunks(put.digest))


def test_an_unreachable_store_is_a_storage_error_naming_it(tmp_path: Path) -> None:
    store = S3Store.from_url(
        "s3://nowhere/x",
        spool=tmp_path,
        endpoint_url="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
    )
    with pytest.raises(StorageError, match="s3://nowhere/x"):
        store.has("0" * 64)


def _stored(store: S3Store, data: bytes) -> str:
    path, digest = _spooled(store, data)
    assert store.adopt(path, digest).added
    return digest


def _wait_until_older_than(store: S3Store, digest: str, seconds: float) -> None:
    """Wait (by the store's clock) until the object of ``digest`` is older than ``seconds``."""
    import time

    deadline = time.monotonic() + 30
    while (store._age_s(digest, store.key_of(digest)) or 0) <= seconds:
        assert time.monotonic() < deadline, "the store's clock did not move"
        time.sleep(0.2)


def test_sweep_keeps_what_is_recent_and_removes_the_rest(s3_store: S3Store) -> None:
    digest = _stored(s3_store, b"an orphan")
    assert s3_store.sweep(digest, lambda: True, grace_s=3600) == (Sweep.KEPT, 0)
    assert s3_store.has(digest)
    _wait_until_older_than(s3_store, digest, 1)
    assert s3_store.sweep(digest, lambda: False, grace_s=1) == (Sweep.KEPT, 0)
    assert s3_store.has(digest), "referenced at the last check: put back"
    _wait_until_older_than(s3_store, digest, 1)  # a copy put back is new to the store
    assert s3_store.sweep(digest, lambda: True, grace_s=1) == (Sweep.REMOVED, len(b"an orphan"))
    assert not s3_store.has(digest)
    assert s3_store.sweep(digest, lambda: True, grace_s=1) == (Sweep.GONE, 0)
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket, Prefix=s3_store.prefix)
    assert listed.get("KeyCount", 0) == 0, "no copy or claim is left behind"


def test_an_upload_claiming_the_content_during_a_sweep_keeps_it(
    s3_store: S3Store, s3_server: S3Server, tmp_path: Path
) -> None:
    """Another replica's upload finds the content while a collection is removing it: its
    claim, written before the collection deleted the object, is seen at the last check and
    the object is put back."""
    data = os.urandom(1 << 20)
    digest = _stored(s3_store, data)
    _wait_until_older_than(s3_store, digest, 1)
    other = S3Store.from_url(
        f"s3://{s3_store.bucket}/{s3_store.prefix}", spool=tmp_path / "other", **_creds(s3_server)
    )

    def upload_claimed_meanwhile() -> bool:
        # the first step of other.claim(), as if it ran just before the delete
        other.client.put_object(
            Bucket=other.bucket, Key=other._side_key("claims", digest), Body=b""
        )
        return True  # no record refers to it yet

    assert s3_store.sweep(digest, upload_claimed_meanwhile, grace_s=1) == (Sweep.KEPT, 0)
    assert b"".join(other.iter_chunks(digest)) == data
    # a claim made before a sweep keeps the object from being set aside at all
    _wait_until_older_than(s3_store, digest, 1)
    assert other.claim(digest) == len(data)
    assert s3_store.sweep(digest, lambda: True, grace_s=1) == (Sweep.KEPT, 0)
    # finding nothing takes the claim back
    assert other.claim(blake3.blake3(b"never stored").hexdigest()) is None
    claims = f"{s3_store.prefix}/claims/"
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket, Prefix=claims)
    assert [c["Key"] for c in listed["Contents"]] == [claims + digest]


def _creds(s3_server: S3Server) -> dict[str, str]:
    env = s3_server.env()
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region": env["AWS_REGION"],
        "access_key_id": env["AWS_ACCESS_KEY_ID"],
        "secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def test_a_backup_of_an_s3_store_restores_into_another_with_digests_checked(
    s3_store: S3Store, s3_server: S3Server, tmp_path: Path
) -> None:
    from labledger.archive.results import back_up_files, restore_files
    from labledger.errors import IntegrityError

    contents = [os.urandom(3 << 20), b"small", b""]
    digests = {_stored(s3_store, c) for c in contents}
    copied = back_up_files(s3_store, tmp_path / "backup")
    assert (copied.count, copied.size) == (3, sum(map(len, contents)))
    backup = BlobStore(tmp_path / "backup")
    assert set(backup.iter_digests()) == digests and not list(backup.tmp.iterdir())

    target = S3Store.from_url(
        f"s3://{s3_server.create_bucket()}/restored", spool=tmp_path / "spool", **_creds(s3_server)
    )
    assert restore_files(tmp_path / "backup", target).count == 3
    for content in contents:
        assert b"".join(target.iter_chunks(blake3.blake3(content).hexdigest())) == content

    damaged = blake3.blake3(b"small").hexdigest()
    backup.path_of(damaged).chmod(0o644)
    backup.path_of(damaged).write_bytes(b"smell")
    fresh = S3Store.from_url(
        f"s3://{s3_server.create_bucket()}/p", spool=tmp_path / "spool2", **_creds(s3_server)
    )
    with pytest.raises(IntegrityError, match=damaged):
        restore_files(tmp_path / "backup", fresh)
    assert not fresh.has(damaged) and len(list(fresh.iter_digests())) == 2


def _receive(store: S3Store, data: bytes, expected: str | None) -> StoredBlob:
    receiver = store.receive(expected)
    for at in range(0, len(data), 3 << 20):
        receiver.write(data[at : at + (3 << 20)])
    return receiver.commit()


def test_received_uploads_become_visible_only_when_checked(s3_store: S3Store) -> None:
    from labledger.errors import IntegrityError

    client = s3_store.client
    for size in (20 << 20, 1000):  # several parts, and less than one
        data = os.urandom(size)
        digest = blake3.blake3(data).hexdigest()
        with pytest.raises(IntegrityError):
            _receive(s3_store, data, blake3.blake3(b"meant").hexdigest())
        assert list(s3_store.iter_digests()) == []
        assert not client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads")
        stored = _receive(s3_store, data, None)  # digest unknown until the end
        assert (stored.digest, stored.size, stored.added) == (digest, size, True)
        assert _receive(s3_store, data, digest).added is False
        assert b"".join(s3_store.iter_chunks(digest)) == data
        s3_store.remove(digest)
    announced = os.urandom(17 << 20)
    assert _receive(s3_store, announced, blake3.blake3(announced).hexdigest()).added
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]]
    assert keys == [s3_store.key_of(blake3.blake3(announced).hexdigest())], "nothing else left"
