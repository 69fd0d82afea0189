"""The content-addressed blob store: round trips, dedupe, atomic writes, verify and gc."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.archive.store import CHUNK, BlobStore, hash_file
from labledger.errors import IntegrityError, NotFound


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    s = BlobStore(tmp_path / "store")
    s.create()
    return s


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4096))
def test_put_bytes_then_get_gives_the_same_bytes(store: BlobStore, data: bytes) -> None:
    blob = store.put_bytes(data)
    assert store.get(blob.digest) == data
    assert blob.digest == blake3.blake3(data).hexdigest()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3 * 4096))
def test_put_file_then_get_gives_the_file_content(
    store: BlobStore, tmp_path: Path, data: bytes
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    blob = store.put_file(src)
    assert store.get(blob.digest) == data
    assert blob.size == len(data)


def test_a_file_larger_than_a_chunk_streams_and_keeps_its_digest(
    store: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(CHUNK * 3 + 17)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    blob = store.put_file(src)
    assert blob.digest == blake3.blake3(data).hexdigest()
    assert hash_file(store.path_of(blob.digest)) == (blob.digest, len(data))


def test_the_same_content_is_stored_once(store: BlobStore, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"same content")
    results = [store.put_file(tmp_path / name) for name in ("a", "b", "c")]
    assert [r.added for r in results] == [True, False, False]
    assert len(set(r.digest for r in results)) == 1
    assert list(store.iter_digests()) == [results[0].digest]
    assert list(store.tmp.iterdir()) == []  # no temp file is left behind


def test_blobs_are_read_only_and_temp_files_never_share_final_names(
    store: BlobStore,
) -> None:
    blob = store.put_bytes(b"x" * 10)
    assert store.path_of(blob.digest).stat().st_mode & 0o222 == 0


def test_verify_names_a_corrupted_blob_and_the_missing_ones(store: BlobStore) -> None:
    good = store.put_bytes(b"good")
    bad = store.put_bytes(b"will be damaged")
    path = store.path_of(bad.digest)
    path.chmod(0o644)
    path.write_bytes(b"will be damageD")
    absent = blake3.blake3(b"never stored").hexdigest()

    report = store.verify(expected={good.digest, bad.digest, absent})
    assert report.damaged == [bad.digest]
    assert report.missing == [absent]
    assert not report.ok
    assert store.verify(expected={good.digest}).damaged == [bad.digest]


def test_verify_accepts_a_sound_store(store: BlobStore) -> None:
    digests = {store.put_bytes(bytes([i]) * i).digest for i in range(20)}
    report = store.verify(expected=digests)
    assert report.ok
    assert report.checked == 20


def test_gc_drops_only_unreferenced_blobs_and_stale_temp_files(store: BlobStore) -> None:
    keep = store.put_bytes(b"keep")
    drop = store.put_bytes(b"drop me")
    (store.tmp / "blob-leftover").write_bytes(b"half a blob from a crash")
    count, freed = store.gc({keep.digest})
    assert (count, freed) == (1, len(b"drop me"))
    assert store.has(keep.digest)
    assert not store.has(drop.digest)
    assert list(store.tmp.iterdir()) == []


def test_missing_blob_error_says_what_to_run(store: BlobStore) -> None:
    absent = blake3.blake3(b"nothing").hexdigest()
    with pytest.raises(NotFound, match="labledger verify"):
        store.get(absent)


@pytest.mark.parametrize("digest", ["", "../../etc/passwd", "AB" * 32, "a" * 63, "g" * 64])
def test_a_malformed_digest_never_names_a_path(store: BlobStore, digest: str) -> None:
    with pytest.raises(IntegrityError):
        store.path_of(digest)
