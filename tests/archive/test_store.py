"""The content-addressed blob store: round trips, dedupe, atomic writes, verify and gc."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.archive import store as store_module
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


_ASK_MODES = {
    # every shard folder asked about is listed (no folder counts as too large)
    "listing folders": (1, 1 << 40),
    # every blob is stat-ed (no shard is asked about enough digests to list it)
    "a stat per blob": (1 << 40, 0),
}


@pytest.mark.parametrize("mode", list(_ASK_MODES), ids=list(_ASK_MODES))
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stored=st.lists(st.binary(max_size=8), max_size=25, unique=True),
    absent=st.lists(st.binary(min_size=9, max_size=12), max_size=40, unique=True),
)
def test_present_names_exactly_the_stored_blobs_among_those_asked(
    store: BlobStore,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    stored: list[bytes],
    absent: list[bytes],
) -> None:
    list_from, bytes_per_digest = _ASK_MODES[mode]
    monkeypatch.setattr(store_module, "LIST_FROM", list_from)
    monkeypatch.setattr(store_module, "LIST_BYTES_PER_DIGEST", bytes_per_digest)
    kept = {store.put_bytes(data).digest for data in stored}
    # Contents never stored (longer than any stored one), some of them in shards that hold
    # stored blobs, some in shards that do not exist.
    missing = {blake3.blake3(data).hexdigest() for data in absent}
    asked = sorted(kept | missing)
    assert store.present(asked) == kept
    assert store.present(asked) == {d for d in asked if store.has(d)}
    assert store.missing(asked) == [d for d in asked if d in missing]


@pytest.mark.parametrize("mode", list(_ASK_MODES), ids=list(_ASK_MODES))
def test_present_never_vouches_for_a_removed_blob_or_a_folder_in_its_place(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    list_from, bytes_per_digest = _ASK_MODES[mode]
    monkeypatch.setattr(store_module, "LIST_FROM", list_from)
    monkeypatch.setattr(store_module, "LIST_BYTES_PER_DIGEST", bytes_per_digest)
    digests = [store.put_bytes(f"blob {i}".encode()).digest for i in range(100)]
    removed = set(digests[::7])
    for digest in removed:
        store.remove(digest)
    # A folder where a blob should be is not a blob (has() says so too).
    odd = digests[1]
    store.remove(odd)
    store.path_of(odd).mkdir()
    assert store.present(digests) == set(digests) - removed - {odd}


def test_present_refuses_a_damaged_digest_and_names_it(store: BlobStore) -> None:
    good = store.put_bytes(b"x").digest
    with pytest.raises(IntegrityError, match=r"'\.\./\.\./"):
        store.present([good, "../../" + "a" * 58])
    with pytest.raises(IntegrityError, match="A" * 64):
        store.present([good, "A" * 64])


def test_a_shard_folder_far_larger_than_what_is_asked_of_it_is_not_listed(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shard of several blobs, one of them asked about: a stat, not a listing. "Far larger"
    # is set to anything above one digest's share of the folder's size, whatever the file
    # system reports as a folder's size.
    monkeypatch.setattr(store_module, "LIST_FROM", 1)
    digests = [store.put_bytes(f"many {i}".encode()).digest for i in range(60)]
    shard = max({d[:2] for d in digests}, key=lambda s: sum(d[:2] == s for d in digests))
    one = next(d for d in digests if d[:2] == shard)
    size = (store.objects / shard).stat().st_size
    monkeypatch.setattr(store_module, "LIST_BYTES_PER_DIGEST", size - 1)
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path: str) -> Any:  # records what is listed
        listed.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert store.present([one]) == {one}
    assert listed == []
    # Asked about all of that shard's blobs, the folder is listed once.
    in_shard = [d for d in digests if d[:2] == shard]
    assert len(in_shard) >= 2
    assert store.present(in_shard) == set(in_shard)
    assert listed == [str(store.objects / shard)]
